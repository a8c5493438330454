"""Every conformance check, as a named function, by category (the registry's implementing modules):

- :mod:`conformance.checks.contract`: judges of one evaluated request generated from the contract
  (schemathesis' built-ins under their own names, and ours); each says when it applies;
- :mod:`conformance.checks.lifecycle`: judges of the job lifecycle, fed by :mod:`conformance.lifecycle`
  with events (each says which events it receives and what it requires);
- :mod:`conformance.checks.document`: checks of the vendored contract documents themselves.

Adding a check is adding a decorated function to one of these modules (``@check(...)`` from
:mod:`conformance.registry`). Importing this package registers them all; :func:`all_checks`, :func:`select`
and :func:`get` read the complete registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..registry import CATEGORIES, Check, UnknownCheckError, lookup, registered
from . import contract, document, lifecycle  # noqa: F401  (importing them registers their checks)


def all_checks() -> list[Check]:
    """Every registered check: contract, lifecycle, document, each in registration order."""
    return registered()


def get(name: str) -> Check:
    """The check called ``name``. Raises :class:`UnknownCheckError`."""
    found = lookup(name)
    if found is None:
        raise UnknownCheckError(f"unknown check {name!r} (see `conformance checks` for the list)")
    return found


def select(names: Iterable[str] | None) -> list[Check]:
    """Resolve ``--check`` values: check names and/or category names. None or empty selects every check.

    Raises:
        UnknownCheckError: a value is neither a check nor a category.
    """
    checks = all_checks()
    names = [n for n in (names or []) if n]
    if not names:
        return checks
    wanted: set[str] = set()
    for n in names:
        if n in CATEGORIES:
            wanted.update(c.name for c in checks if c.category == n)
        elif lookup(n) is not None:
            wanted.add(n)
        else:
            raise UnknownCheckError(f"unknown check {n!r} (see `conformance checks` for the list)")
    return [c for c in checks if c.name in wanted]


__all__ = ["all_checks", "get", "select"]
