"""Warm workers and the long-tasks-first order against a git revision, side by side in one
sitting: the wall time of configs/default.toml with `--jobs 2` by REV's tree (a fresh
process per task, in fold order), by this tree with `executor.tasks_per_worker = 1` (a
fresh process per task, CNNs first) and by this tree as it is (workers take task after
task), in turns; the fold kappas of every run, which must all be equal (and equal to a
`--jobs 1` run's: the model never depends on how tasks are spread).

    python benchmarks/workers.py [--against REV] [--rounds 2] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from _common import ROOT, run_cli, scratch, sets


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
    parser.add_argument("--against", default="d405592", help="git revision measured beside")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="extra")
    args = parser.parse_args()
    base = scratch("dfu-workers-")
    cache = base / "cache"
    other = base / "against"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(other), args.against], cwd=ROOT, check=True
    )
    run_cli("validate", "configs/default.toml", cache=cache)  # demo data and crops ready
    modes = {
        f"{args.against} (fresh process per task, fold order)": (other, []),
        "this tree, fresh process per task": (ROOT, ["executor.tasks_per_worker=1"]),
        "this tree (warm workers)": (ROOT, []),
    }
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    kappas: dict[str, list[float]] = {}
    try:
        for r in range(args.rounds):
            order = list(modes) if r % 2 == 0 else list(reversed(modes))
            for mode in order:
                code, extra = modes[mode]
                runs = base / f"mode{list(modes).index(mode)}-{r}"
                wall, _ = run_cli(
                    "run",
                    "configs/default.toml",
                    "--runs-dir",
                    str(runs),
                    "--jobs",
                    "2",
                    *sets(*extra, *args.extra),
                    cache=cache,
                    code=code,
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
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
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
    medians = {m: statistics.median(v) for m, v in seconds.items()}
    before = medians[next(iter(modes))]
    for mode, median in medians.items():
        print(f"median wall {mode}: {median:.1f} s ({median / before:.2f} x {args.against})")
    same = len({tuple(k) for k in kappas.values()}) == 1
    count = len(next(iter(kappas.values())))
    print(
        f"fold kappas ({count} per run) " + ("identical in every run" if same else "DIFFER") + ":"
    )
    for name, values in kappas.items():
        shown = values if len(values) <= 20 or not same else values[:20]
        more = f", ... ({len(values) - len(shown)} more)" if len(shown) < len(values) else ""
        print(f"  {name}: {', '.join(f'{k:.4f}' for k in shown)}{more}")


if __name__ == "__main__":
    main()
