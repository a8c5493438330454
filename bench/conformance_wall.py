"""Wall time of the whole conformance suite (all six providers, embedded mock): the README's quick start.

Runs ``python -m conformance run --all`` as a subprocess (exactly what a user runs), then prints the wall
time, the target (90 s on a 2-core machine), the fewest generated examples of any operation (target >= 50),
the number of requests, and whether the suite passed.

Usage:  .venv/bin/python bench/conformance_wall.py [--seed N] [--repeat K] [extra conformance run flags]
Exit code: 0 when every repeat finished within the target with >= 50 examples per operation, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 90.0
MIN_EXAMPLES = 50


def once(seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="conformance-bench-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "conformance", "run", "--all", "--seed", str(seed), "--no-progress",
               "--json", str(report), *extra]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
        wall = time.monotonic() - t0
        if proc.returncode == 2 or not report.exists():
            sys.stderr.write(proc.stderr)
            raise SystemExit(2)
        data = json.loads(report.read_text())
    counts = [e["count"] for e in data["examples"]]
    return {"wall": wall, "exit": proc.returncode, "ok": data["ok"], "min_examples": min(counts) if counts else 0,
            "operations": len(counts), "examples": sum(counts),
            "failed_checks": sorted({f"{o['provider']}/{o['check']}" for o in data["outcomes"] if o["failed"]})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args, extra = ap.parse_known_args()
    good = True
    print(f"conformance run --all (embedded mock), {os.cpu_count()} CPU(s), target {TARGET_SECONDS:g} s")
    for i in range(args.repeat):
        r = once(args.seed + i, extra)
        within = r["wall"] <= TARGET_SECONDS and r["min_examples"] >= MIN_EXAMPLES
        good = good and within
        print(f"seed {args.seed + i}: wall {r['wall']:.1f} s · {r['operations']} operations · "
              f"{r['examples']} generated examples (fewest per operation: {r['min_examples']}) · "
              f"suite {'passed' if r['ok'] else 'FAILED: ' + ', '.join(r['failed_checks'])} · "
              f"{'within target' if within else 'OVER TARGET'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
