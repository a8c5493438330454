"""Wall time of ``conformance run --all`` with ``--parallel 1`` against ``--parallel 2`` and ``3`` (embedded mock).

For each seed and each process count, runs ``python -m conformance run --all --seed S --parallel N
--no-progress --json ...`` as a subprocess (what a user runs), checks that every run agrees on the verdicts
(status of each provider x check), and prints the median wall time per process count and its ratio to
``--parallel 1``. Bounded: every run has a timeout (``--run-timeout``, default 600 s) and 127.0.0.1 only.

The ratio depends on the machine: the processes share its cores with each other (and with anything else
running), so on a 2-core machine a third process cannot help much.

Usage:  .venv/bin/python bench/parallel_wall.py [--seeds 1 2 3] [--parallel 1 2 3] [extra conformance run flags]
Exit code: 0 when every run ended with exit 0 and the verdicts agreed, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(seed: int, processes: int, extra: list[str], timeout: float) -> dict:
    """One run; returns its wall time (s), exit code and verdicts ``{(provider, check): status}``."""
    with tempfile.TemporaryDirectory(prefix="conformance-bench-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "conformance", "run", "--all", "--seed", str(seed), "--parallel", str(processes),
               "--no-progress", "--json", str(report), *extra]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=timeout)
        wall = time.monotonic() - t0
        if not report.exists():
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(2)
        data = json.loads(report.read_text())
    return {"wall": wall, "exit": proc.returncode,
            "verdicts": {(o["provider"], o["check"]): o["status"] for o in data["outcomes"]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--run-timeout", type=float, default=600.0, help="seconds one run may take")
    args, extra = ap.parse_known_args()
    counts = sorted(set(args.parallel) | {1})
    print(f"conformance run --all (embedded mock), {os.cpu_count()} CPU(s), load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, seeds {args.seeds}, --parallel {counts}")
    walls: dict[int, list[float]] = {n: [] for n in counts}
    good = True
    for seed in args.seeds:
        seen = None
        for n in counts:  # interleaved, so that a change of machine load hits every process count alike
            r = once(seed, n, extra, args.run_timeout)
            walls[n].append(r["wall"])
            same = seen is None or r["verdicts"] == seen
            seen = seen or r["verdicts"]
            good = good and r["exit"] == 0 and same
            print(f"seed {seed} --parallel {n}: {r['wall']:.1f} s, exit {r['exit']}"
                  f"{'' if same else ', VERDICTS DIFFER from --parallel 1'}", flush=True)
    base = statistics.median(walls[1])
    for n in counts:
        med = statistics.median(walls[n])
        print(f"--parallel {n}: median {med:.1f} s over {len(walls[n])} run(s) "
              f"(min {min(walls[n]):.1f}, max {max(walls[n]):.1f}); ratio to --parallel 1: {med / base:.2f}")
    print("verdicts identical across process counts" if good else "SOME RUN FAILED OR VERDICTS DIFFERED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
