"""The local executor vs. the Ray executor on this machine, side by side in one run.

    python benchmarks/executors.py [--rounds 2]

Runs configs/default.toml (its demo, 3 folds, metadata + thermal_map) with each executor in
turns and prints the wall times and their ratio (target: Ray <= 1.15x local), then the fixed
cost of one task on each: a metadata task of the default demo (process start, imports and
data delivery), from its `task_started` to its `branch_finished` and from the supervisor's
start to the first task's start.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import run_cli, scratch, sets


def task_seconds(run: Path) -> tuple[float, float]:
    """(median seconds from task_started to branch_finished of metadata tasks, seconds from
    run_started to the first task_started)."""
    log = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]
    starts = {e["task"]: e["ts"] for e in log if e["kind"] == "task_started"}
    ends = {e["task"]: e["ts"] for e in log if e["kind"] == "branch_finished"}
    meta = [ends[t] - starts[t] for t in ends if t.endswith("-metadata") and t in starts]
    run_start = next(e["ts"] for e in log if e["kind"] == "run_started")
    return statistics.median(meta), min(starts.values()) - run_start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = scratch("dfu-exec-")
    cache = work / "cache"
    run_cli("validate", "configs/default.toml", cache=cache)  # demo and crops made once
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    fixed: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    for i in range(args.rounds):
        for kind in ("local", "ray"):
            runs = work / f"{kind}{i}"
            seconds, _ = run_cli(
                "run",
                "configs/default.toml",
                "--runs-dir",
                str(runs),
                "--executor",
                kind,
                *sets("radar.enabled=false"),
                cache=cache,
            )
            walls[kind].append(seconds)
            fixed[kind].append(task_seconds(next(runs.iterdir())))
    local, ray = sum(walls["local"]), sum(walls["ray"])
    print(f"configs/default.toml wall time, local {walls['local']} s, ray {walls['ray']} s")
    print(f"ray / local = {ray / local:.3f} (target <= 1.15)")
    for kind in ("local", "ray"):
        task = statistics.median(t for t, _ in fixed[kind])
        first = statistics.median(f for _, f in fixed[kind])
        print(
            f"{kind}: a metadata task (its forest included) {task:.2f} s; "
            f"run start -> first task start {first:.2f} s"
        )


if __name__ == "__main__":
    main()
