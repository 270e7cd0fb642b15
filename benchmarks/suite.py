"""The test suite's own time, side by side in one sitting: `pytest` with each number of test
processes given (`-n N --dist loadgroup`, as `make test`), in turns, and optionally the
same in another checkout (`--tree DIR`, with its own `.venv`: e.g. a clone at an older
commit, for "today's suite against the new one"). For each run: the wall time, the share of
this machine's cores that were busy meanwhile (from /proc/stat: how much waiting there was
for the other test processes to fill), and pytest's last line.

    python benchmarks/suite.py [--procs 2 3] [--rounds 1] [--tree DIR] [-- PYTEST ARGS]

The whole suite by default (`-- -m "not slow"`: the fast set). Minutes per run: run it on
an otherwise idle machine, and compare only runs of the same sitting.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from _common import ROOT


def cpu_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all cores since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        user, nice, system, idle, iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return user + nice + system + irq + softirq, idle + iowait


def run_suite(tree: Path, procs: int, args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, busy share of the cores, pytest's last line) of one run in `tree`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "-q"]
    command += ["-n", str(procs), "--dist", "loadgroup", *args]
    busy0, idle0 = cpu_ticks()
    began = time.monotonic()
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    busy1, idle1 = cpu_ticks()
    busy, idle = busy1 - busy0, idle1 - idle0
    lines = [x for x in proc.stdout.splitlines() if x.strip()]
    return wall, busy / max(1, busy + idle), (lines[-1] if lines else f"exit {proc.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tree", type=Path, help="another checkout with its own .venv")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    opts = parser.parse_args()
    trees = [ROOT, *([opts.tree.resolve()] if opts.tree else [])]
    print(f"{'tree':<30} {'procs':>5} {'wall s':>8} {'busy':>6}  pytest")
    for _ in range(opts.rounds):
        for tree in trees:
            for n in opts.procs:
                wall, busy, last = run_suite(tree, n, opts.pytest_args)
                name = "this tree" if tree == ROOT else str(tree)
                print(f"{name[-30:]:<30} {n:>5} {wall:>8.1f} {busy:>6.0%}  {last}", flush=True)


if __name__ == "__main__":
    main()
