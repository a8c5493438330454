"""Property-based conformance suite: checks a target (the mock, a proxy or a real provider) against the
vendored contracts in ``specs/``.

- ``conformance run --all`` (see :mod:`conformance.cli`) runs every check against the embedded mock.
- Checks are a registry of named functions (:mod:`conformance.registry`) in three categories: contract
  (schemathesis-generated requests per operation, :mod:`conformance.contract_checks`), lifecycle (a
  hypothesis state machine through a driver per protocol family, :mod:`conformance.lifecycle`,
  :mod:`conformance.drivers`) and document (:mod:`conformance.document`).
- Every request goes through one client (:mod:`conformance.http`) whose transport applies the spend guard
  (:mod:`conformance.spend`) and calls recording hooks.
"""

from .context import RunConfig
from .registry import Check, all_checks, select

__all__ = ["Check", "RunConfig", "all_checks", "select"]
