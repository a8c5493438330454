"""The check registry is real: every registered check name resolves to a function in conformance/checks/ that
judges it, and every evaluation of a check (a pass or a failure in the results) is made by that function."""

from __future__ import annotations

import contextvars
import dataclasses

import specs
from conformance import checks
from conformance import registry as reg
from conformance.context import RunConfig
from conformance.results import Results
from conformance.runner import execute
from conformance.target import open_target


def test_every_registered_check_is_a_function_with_its_applicability():
    found = checks.all_checks()
    assert len({c.name for c in found}) == len(found) >= 40
    for c in found:
        assert callable(c.fn), c.name
        assert c.fn.__module__ == f"conformance.checks.{c.category}", (c.name, c.fn.__module__)
        assert c.description and c.source.ref, c.name
        if c.category == "contract":
            assert callable(c.applies), f"{c.name}: a contract check says which results it judges"
        if c.category == "lifecycle":
            assert c.events, f"{c.name}: a lifecycle check says which events it receives"


def test_every_evaluation_is_made_by_the_function_of_its_check(monkeypatch):
    """Run the whole suite on the mock with each check function wrapped: every pass and every failure recorded
    for check N happens while N's own function runs (no check is judged anywhere else)."""
    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_check", default=None)
    outside: list[tuple[str, str | None]] = []
    called: set[str] = set()

    def wrap(c):
        def judged(*args, **kwargs):
            token = current.set(c.name)
            called.add(c.name)
            try:
                return c.fn(*args, **kwargs)
            finally:
                current.reset(token)
        return dataclasses.replace(c, fn=judged)

    for c in checks.all_checks():
        monkeypatch.setitem(reg._REGISTRY, c.name, wrap(c))
    passed, failed = Results.passed, Results.failed

    def record_pass(self, provider, check, n=1):
        if current.get() != check:
            outside.append((check, current.get()))
        return passed(self, provider, check, n)

    def record_fail(self, failure, documented=True):
        if current.get() != failure.check:
            outside.append((failure.check, current.get()))
        return failed(self, failure, documented=documented)

    monkeypatch.setattr(Results, "passed", record_pass)
    monkeypatch.setattr(Results, "failed", record_fail)
    providers = specs.provider_ids()
    target = open_target(providers, speed=10.0, seed=31)
    config = RunConfig(providers=providers, checks=checks.select(None), seed=31, examples=4, negative_examples=2,
                       unknown_examples=2, lifecycle_runs=1, lifecycle_steps=4)
    try:
        results = execute(config, target)
    finally:
        target.close()
    assert outside == [], outside[:5]
    assert not results.suite_errors, results.internal_errors
    evaluated = {o.check for o in results.outcomes() if o.passed or o.failed}
    assert evaluated <= called
    assert len(evaluated) >= 40, sorted({c.name for c in checks.all_checks()} - evaluated)
