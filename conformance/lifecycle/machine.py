"""The lifecycle state machine: a hypothesis ``RuleBasedStateMachine`` per provider run that starts every run
with a fixed opening (:meth:`conformance.lifecycle.actions.Lifecycle.opening`) and then interleaves jobs by
random rules (submit, poll, cancel, remix, extend, early output, delete, list, stream, wait); at the end of each run
every job is driven to its end, its output fetched, its assets downloaded and its webhooks collected.
"""

from __future__ import annotations

import random

from ..context import ProviderRun, sub_seed
from ..fixtures import generate_ops
from .actions import Lifecycle
from .events import Monitor
from .skips import skip_reason


def make_machine(run: ProviderRun):
    """A RuleBasedStateMachine class bound to one provider run (see module docstring)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, precondition, rule

    drivers = run.drivers
    creators = [d for d in drivers if d.supports("submit")]
    generators = [d for d in creators if generate_ops(d)]
    remixers = [(d, op) for d in creators for op in d.creators("remix")]
    extenders = [(d, op) for d in creators if d.supports("extend") for op in d.ops.get("extend", [])]
    pollers = [d for d in drivers if d.supports("poll")]
    listers = [d for d in drivers if d.supports("list")]
    sizes = [None, "1280x720", "720x1280"]
    seconds_choices = [None, 4, 8]

    class Machine(RuleBasedStateMachine):
        jobs = Bundle("jobs")

        runs_done = 0

        def __init__(self):
            super().__init__()
            Machine.runs_done += 1
            run.progress(f"lifecycle run {Machine.runs_done}/{run.config.lifecycle_runs}")
            self.monitor = Monitor(run)
            self.life = Lifecycle(run, self.monitor, random.Random(sub_seed(run.config.seed, run.id, id(self))))

        @initialize(target=jobs, pick=st.integers(0, 7))
        def start(self, pick):
            """A fixed opening so every property is exercised in every run (see Lifecycle.opening); random
            rules follow. The fixture jobs made before the machine are judged here too (first run only)."""
            if run.pool is not None and not getattr(run.pool, "adopted", False):
                run.pool.adopted = True
                for job in run.pool.jobs:
                    self.monitor.adopt(job)
            out = self.life.opening(generators, remixers, pick, extenders)
            for d in generators[1:]:  # every other host that creates jobs gets one too
                job = self.life.submit(d, False, None, None)
                if job is not None:
                    out.append(job)
            return multiple(*out)

        @precondition(lambda self: bool(generators) and not self.life.stopped)
        @rule(target=jobs, which=st.integers(0, 7), fail=st.sampled_from([False, False, False, False, True]),
              seconds=st.sampled_from(seconds_choices), size=st.sampled_from(sizes))
        def submit(self, which, fail, seconds, size):
            job = self.life.submit(generators[which % len(generators)], fail, seconds, size)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(remixers) and not self.life.stopped)
        @rule(target=jobs, source=jobs, which=st.integers(0, 7), seconds=st.sampled_from([None, 4]))
        def remix_job(self, source, which, seconds):
            d, op = remixers[which % len(remixers)]
            job = self.life.remix(source, d, op, seconds)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(extenders) and not self.life.stopped)
        @rule(target=jobs, source=jobs, which=st.integers(0, 7), seconds=st.sampled_from([None, 4]))
        def extend_job(self, source, which, seconds):
            if source.kind == "extend":
                return multiple()  # no chains: each link adds seconds, and a target bounds the stitched total
            d, op = extenders[which % len(extenders)]
            job = self.life.extend(source, d, op, seconds)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(remixers) and bool(run.pool and run.pool.sources) and not self.life.stopped)
        @rule(target=jobs, which=st.integers(0, 7), pick=st.integers(0, 7))
        def remix_pool_source(self, which, pick):
            d, op = remixers[which % len(remixers)]
            src = run.pool.sources[pick % len(run.pool.sources)]
            job = self.life.remix(src, d, op, None)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(pollers))
        @rule(job=jobs)
        def poll(self, job):
            self.life.poll(job)

        @rule(job=jobs)
        def cancel(self, job):
            self.life.cancel(job)

        @rule(job=jobs)
        def early_result(self, job):
            self.life.early_result(job)

        @rule(job=jobs)
        def delete(self, job):
            self.life.delete(job)

        @precondition(lambda self: bool(listers))
        @rule(which=st.integers(0, 7), limit=st.integers(1, 4))
        def list_some(self, which, limit):
            self.life.list(listers[which % len(listers)], limit, complete=False)

        @rule(job=jobs)
        def stream(self, job):
            if job.driver.supports("stream"):
                self.life.stream(job)

        @rule(ms=st.integers(0, 80))
        def wait(self, ms):
            run.control.sleep(ms / 1000.0)

        def teardown(self):
            for job in list(self.monitor.jobs):
                self.life.finish(job)
            self.life.collect_webhooks()
            for d in listers:
                self.life.list(d, 100, complete=True)
            self.monitor.flush_hints()
            if self.life.stopped:
                run.results.note(run.id, f"lifecycle: stopped submitting ({self.life.stopped})")

    Machine.__name__ = Machine.__qualname__ = f"Lifecycle_{run.id}"
    return Machine


def run_lifecycle(run: ProviderRun) -> None:
    """Run the lifecycle state machine of one provider (``lifecycle_runs`` runs of ``lifecycle_steps`` steps)."""
    wanted = [c for c in run.results.checks if c.category == "lifecycle"]
    if not wanted:
        return
    creators = [d for d in run.drivers if d.supports("submit")]
    if not creators:
        run.results.skip_all(run.id, "no host of this provider has a URL", "lifecycle")
        return
    ok, why = run.can_spend()
    adopted = list(run.pool.jobs) if run.pool is not None else []
    if not ok and not adopted:
        run.results.skip_all(run.id, f"lifecycle checks create jobs: {why}", "lifecycle")
        return
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as hseed
    from hypothesis.stateful import run_state_machine_as_test

    machine = make_machine(run)
    hseed(sub_seed(run.config.seed, run.id, "lifecycle"))(machine)
    runs = run.config.lifecycle_runs if ok else 1  # no more jobs can be made: one run judges the fixture jobs
    run_state_machine_as_test(machine, settings=settings(
        max_examples=runs, stateful_step_count=run.config.lifecycle_steps, deadline=None,
        database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    for c in wanted:
        run.skip(c.name, skip_reason(run, c.name))


