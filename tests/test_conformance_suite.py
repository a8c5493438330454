"""The main job: the whole suite for all six providers against the embedded mock passes, with at least 50
generated examples per operation (the README's quick start, ``conformance run --all``). Its wall time is
measured by bench/conformance_wall.py, not asserted here."""

from __future__ import annotations

import specs
from conformance import checks as registry
from conformance.context import RunConfig, op_label
from conformance.runner import execute
from conformance.target import DEFAULT_SPEED, open_target

MIN_EXAMPLES = 50


def test_whole_suite_passes_against_the_embedded_mock():
    providers = specs.provider_ids()
    config = RunConfig(providers=providers, checks=registry.select(None), seed=20261122)
    config.negative_examples, config.unknown_examples = 25, 20
    target = open_target(providers, speed=DEFAULT_SPEED, seed=config.seed)
    try:
        results = execute(config, target)
    finally:
        target.close()
    failing = {f"{o.provider}/{o.check}": (o.failures[0].message[:300] if o.failures else "")
               for o in results.outcomes() if o.failed}
    assert not results.internal_errors, results.internal_errors
    assert failing == {}, failing
    # every operation of every provider got at least 50 generated examples
    ops = {(pid, op_label(specs.load(pid), op)) for pid in providers for op in specs.load(pid).operations()}
    assert set(results.examples) == ops
    assert min(results.examples.values()) >= MIN_EXAMPLES, sorted(results.examples.items(), key=lambda kv: kv[1])[:3]
    # the lifecycle properties were exercised on every provider (not all skipped)
    for pid in providers:
        ran = [c.name for c in registry.select(["lifecycle"]) if results.outcome(pid, c.name).passed]
        assert {"job_accepted", "job_finishes", "video_matches_request", "download_content_type"} <= set(ran), pid
