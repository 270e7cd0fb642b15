"""Warm workers against a fresh process per task, side by side in one sitting: the wall
time of configs/default.toml with `--jobs 2` under `executor.tasks_per_worker = 1` (every
task in a fresh process, as before workers took several) and `= 0` (a worker takes task
after task), alternating rounds; the fold kappas of every run, which must all be equal
(and equal to a `--jobs 1` run's: the model never depends on how tasks are spread).

    python benchmarks/workers.py [--rounds 2] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import run_cli, scratch, sets


def fold_kappas(runs: Path) -> list[float]:
    (run,) = runs.iterdir()
    doc = json.loads((run / "summary.json").read_text())
    return [f["kappa"] for c in doc["combinations"] for f in c["folds"]]


def task_seconds(runs: Path) -> tuple[float, float]:
    """(busy task-seconds, wall seconds of the run) from its events: how full the cores were."""
    (run,) = runs.iterdir()
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]
    busy = sum(e["seconds"] for e in events if e["kind"] == "branch_finished")
    wall = next(e["seconds"] for e in events if e["kind"] == "run_finished")
    return busy, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="extra")
    args = parser.parse_args()
    base = scratch("dfu-workers-")
    cache = base / "cache"
    run_cli("validate", "configs/default.toml", cache=cache)  # demo data and crops ready
    modes = {"fresh process per task": "1", "warm workers": "0"}
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    kappas: dict[str, list[float]] = {}
    for r in range(args.rounds):
        order = list(modes) if r % 2 == 0 else list(reversed(modes))
        for mode in order:
            runs = base / f"{mode[:5]}{r}"
            wall, _ = run_cli(
                "run",
                "configs/default.toml",
                "--runs-dir",
                str(runs),
                "--jobs",
                "2",
                *sets(f"executor.tasks_per_worker={modes[mode]}", *args.extra),
                cache=cache,
            )
            seconds[mode].append(wall)
            kappas[f"{mode} round {r + 1}"] = fold_kappas(runs)
            busy, run_wall = task_seconds(runs)
            print(
                f"round {r + 1} {mode}: {wall:.1f} s "
                f"(task-seconds {busy:.0f} in {run_wall:.0f} s of run: "
                f"{busy / run_wall:.2f} of 2 cores in tasks)",
                flush=True,
            )
    runs = base / "jobs1"
    run_cli(
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs),
        "--jobs",
        "1",
        *sets(*args.extra),
        cache=cache,
    )
    kappas["warm workers --jobs 1"] = fold_kappas(runs)
    fresh, warm = (statistics.median(seconds[m]) for m in modes)
    print(f"median wall: fresh {fresh:.1f} s, warm {warm:.1f} s, ratio {warm / fresh:.2f}")
    same = len({tuple(k) for k in kappas.values()}) == 1
    print("fold kappas " + ("identical in every run" if same else "DIFFER") + ":")
    for name, values in kappas.items():
        print(f"  {name}: {', '.join(f'{k:.4f}' for k in values)}")


if __name__ == "__main__":
    main()
