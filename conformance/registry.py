"""The check registry: every conformance check is a named entry, selectable with ``--check NAME``.

Modelled on Schemathesis' registry of named checks (``not_a_server_error``, ``response_schema_conformance``,
...; see /work/shared/DESIGN.md "Checks as a registry"): a report names the check that failed, a user can run
one check, and adding a check is adding a function.

Three categories:

- ``contract``: per-operation checks on requests generated from the contract by schemathesis/hypothesis
  (schemathesis' own built-in checks are registered here under their schemathesis names);
- ``lifecycle``: properties of the job lifecycle observed through a family driver
  (:mod:`conformance.lifecycle`);
- ``document``: checks of the vendored contract documents themselves (:mod:`conformance.document`).

Every check is a function in :mod:`conformance.checks` (one module per category), registered at import
time with what it needs beside it: ``applies`` (contract checks: which evaluated request it judges) or
``events`` (lifecycle checks: which observations it receives), and ``requires`` (what the provider, the
target or the run must offer for it to be evaluated at all; the skip reason is derived from it). This module
holds only the definitions; :mod:`conformance.checks` imports the implementing modules and offers
:func:`~conformance.checks.all_checks`, :func:`~conformance.checks.select` and :func:`~conformance.checks.get`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("contract", "lifecycle", "document")

#: Kinds of expectation source. The first four are documented (a failure of them fails the run on any
#: target); ``mock`` and ``assumption`` are not: against a target that is not our mock, a deviation from them
#: is reported as a note ("not documented by the provider"), never as a failure.
SOURCE_KINDS = ("contract", "doc", "standard", "run", "mock", "assumption")
DOCUMENTED_KINDS = frozenset({"contract", "doc", "standard", "run"})


@dataclass(frozen=True)
class Source:
    """Where an expectation comes from.

    Attributes:
        kind: ``contract`` (a declaration of the provider's contract: operation, response, schema, security),
            ``doc`` (a provider document: file and quote), ``standard`` (an RFC, e.g. RFC 9110's meaning of a
            5xx), ``run`` (a bound the user set, e.g. ``--job-timeout``), ``mock`` (a convention of our mock
            that no provider document backs) or ``assumption`` (the contract's ``x-assumption``: chosen where
            the provider's documents are silent).
        ref: what in that source (``"openai createVideo responses.200"``, ``"RFC 9110 §15.6"``, a file).
        quote: the words of the document, when there is one.
    """

    kind: str
    ref: str
    quote: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind must be one of {SOURCE_KINDS}, not {self.kind!r}")

    @property
    def documented(self) -> bool:
        """True when a deviation from this expectation fails a run on any target."""
        return self.kind in DOCUMENTED_KINDS

    def label(self) -> str:
        """One line for reports: ``contract: openai createVideo responses.200``."""
        text = f"{self.kind}: {self.ref}"
        return text + (f' ("{self.quote}")' if self.quote else "")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "quote": self.quote, "documented": self.documented}


@dataclass(frozen=True)
class Check:
    """One named check.

    Attributes:
        name: unique snake_case name (the ``--check`` value and the report's row label).
        category: ``contract`` | ``lifecycle`` | ``document``.
        description: one sentence saying what the check asserts.
        fn: the implementation; its signature depends on the category (see the implementing module).
        origin: ``"schemathesis"`` for schemathesis built-ins, else ``"conformance"``.
        needs_spend: True when the check can only run by calling operations that cost money
            (``x-billable: true``) on a target that is not the mock.
        events: for lifecycle checks, the event kinds the function receives (see lifecycle.py).
        source: where the check's expectation comes from by default (:class:`Source`); an evaluation may
            name a finer source (a response the contract marks ``x-mock-only`` or ``x-assumption``, or a
            provider's ``expectations`` entry in provider.yaml).
        applies: for contract checks, ``applies(result) -> bool``: whether the check judges an evaluated request
            (:class:`conformance.cases.CaseResult` or :class:`conformance.cases.MethodProbe`).
        requires: what must be there for the check to evaluate at all, as ``{kind: value}``: ``capability``
            (a driver capability: ``poll``, ``cancel``, ``list``, ``delete``, ``stream``, ``remix``),
            ``role`` (an operation role), ``field`` (a field of the contract's job object), ``field_suffix``,
            ``field_prefix``, ``output_request`` (the output has its own request), ``ours`` (only our mock
            can force it), ``webhook``, ``metadata``, ``state`` (``active``: a job observed before it ended;
            ``completed``; ``terminal``), ``hint``. :mod:`conformance.lifecycle.skips` words the skip reason
            from it.
    """

    name: str
    category: str
    description: str
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    origin: str = "conformance"
    needs_spend: bool = False
    events: tuple[str, ...] = ()
    source: Source = field(default=Source("contract", "the operation's declarations"), compare=False)
    applies: Callable[[Any], bool] | None = field(default=None, compare=False, repr=False)
    requires: dict[str, Any] = field(default_factory=dict, compare=False)


_REGISTRY: dict[str, Check] = {}


class UnknownCheckError(ValueError):
    """``--check`` named no registered check or category. ``str(err)`` is one clear line."""


def register(check: Check) -> Check:
    """Add ``check`` to the registry. Raises ValueError on a duplicate name or a bad category."""
    if check.category not in CATEGORIES:
        raise ValueError(f"check {check.name}: category must be one of {CATEGORIES}")
    if check.name in _REGISTRY and _REGISTRY[check.name] is not check:
        raise ValueError(f"check {check.name!r} is registered twice")
    _REGISTRY[check.name] = check
    return check


def check(name: str, category: str, description: str, *, needs_spend: bool = False,
          events: Iterable[str] = (), origin: str = "conformance", source: Source | None = None,
          applies: Callable[[Any], bool] | None = None, requires: dict[str, Any] | None = None) -> Callable:
    """Decorator form of :func:`register`: ``@check("progress_monotonic", "lifecycle", "...")``."""

    def deco(fn: Callable) -> Callable:
        register(Check(name, category, description, fn, origin=origin, needs_spend=needs_spend,
                       events=tuple(events), source=source or Source("contract", "the operation's declarations"),
                       applies=applies, requires=dict(requires or {})))
        return fn

    return deco


def registered() -> list[Check]:
    """The checks registered so far, by category (contract, lifecycle, document), then registration order.
    Use :func:`conformance.checks.all_checks` for the complete list."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(_REGISTRY.values(), key=lambda c: order[c.category])


def lookup(name: str) -> Check | None:
    """The registered check called ``name``, or None."""
    return _REGISTRY.get(name)
