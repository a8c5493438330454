"""Compatibility name: fault injection lives in :mod:`mockserver.middleware.faults`."""

from .middleware.faults import (
    ACTIONS,
    FAULT_HEADER,
    FAULT_KINDS,
    FaultBook,
    FaultError,
    FaultRule,
    parse_fault,
)

__all__ = ["ACTIONS", "FAULT_HEADER", "FAULT_KINDS", "FaultBook", "FaultError", "FaultRule", "parse_fault"]
