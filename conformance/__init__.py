"""Property-based conformance suite: checks a target (the mock, a proxy or a real provider) against the
vendored contracts in ``specs/``.

- ``conformance run --all`` (see :mod:`conformance.cli`) runs every check against the embedded mock.
- Checks are named functions in :mod:`conformance.checks` (registry: :mod:`conformance.registry`), in three
  categories: contract (judges of requests generated per operation by :mod:`conformance.cases`), lifecycle
  (judges of the events of :mod:`conformance.lifecycle`, a hypothesis state machine driving the target
  through a driver per protocol family, :mod:`conformance.drivers`) and document.
- Every request goes through one client (:mod:`conformance.http`) whose transport applies the spend guard
  (:mod:`conformance.spend`) and calls recording hooks.
"""

from .context import RunConfig
from .registry import Check

__all__ = ["Check", "RunConfig", "all_checks", "select"]


def __getattr__(name: str):
    """``conformance.all_checks`` / ``conformance.select``: loaded on first use (they import every check)."""
    if name in ("all_checks", "select", "get"):
        from . import checks

        return getattr(checks, name)
    raise AttributeError(name)
