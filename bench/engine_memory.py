"""Memory per live job of the lifecycle engine (mockserver/engine.py), measured with tracemalloc.

Creates N jobs (default 100,000) the way the mock would: OpenAI-style hex48 ids with a ``video_`` prefix,
a fresh params dict per job (prompt, seconds, size, model) with a distinct prompt string, one shared
Timing, a ManualClock advancing 10 ms per submission.  Prints the traced bytes per job, including the
store's indexes and the job record's explicit mock state (failure message, requested, logs, delivered, polls:
slots of ``Job``, not keys of ``params``), and the target (< 1 KB per job).

Usage:  .venv/bin/python bench/engine_memory.py [--jobs N] [--prompt-chars C]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mockserver.engine import JobStore, ManualClock, Timing, state_at  # noqa: E402

TARGET_BYTES = 1024


def measure(jobs: int, prompt_chars: int) -> tuple[float, float]:
    """Return (bytes per job for everything, bytes per job excluding the prompt strings)."""
    clock = ManualClock(0.0)
    store = JobStore(clock, random.Random(0))
    timing = Timing(0.5, 2.0)
    sizes = ["720x1280", "1280x720", "1024x1792", "1792x1024"]
    filler = "a red fox running through snow, cinematic " * (prompt_chars // 40 + 1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    prompt_bytes = 0
    for i in range(jobs):
        prompt = f"{i} {filler}"[:prompt_chars]  # a distinct string per job, as parsed from a request
        prompt_bytes += sys.getsizeof(prompt)
        store.create(
            "openai",
            "generate" if i % 2 else "remix",
            {"prompt": prompt, "seconds": (4, 8, 12)[i % 3], "size": sizes[i % 4], "model": "sora-2"},
            timing,
            failure="content_policy_violation" if i % 50 == 0 else None,
            id_prefix="video_",
            id_format="hex48",
        )
        clock.advance(0.01)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store) == jobs
    # sanity: every job is readable
    now = clock.now()
    jobs_page, _ = store.list("openai", "asc", None, 5)
    for job in jobs_page:
        state_at(job, now)
    total = (after - before) / jobs
    return total, total - prompt_bytes / jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="number of jobs to create (default 100000)")
    parser.add_argument("--prompt-chars", type=int, default=64, help="prompt length in characters (default 64)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.prompt_chars < 0:
        print("error: --jobs must be >= 1 and --prompt-chars >= 0", file=sys.stderr)
        return 2
    total, without_prompt = measure(args.jobs, args.prompt_chars)
    verdict = "OK" if total < TARGET_BYTES else "OVER TARGET"
    print(f"jobs: {args.jobs}  prompt: {args.prompt_chars} chars")
    print(f"bytes per job: {total:.0f} (excluding the prompt string itself: {without_prompt:.0f})")
    print(f"target: < {TARGET_BYTES} bytes per job -> {verdict}")
    return 0 if total < TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
