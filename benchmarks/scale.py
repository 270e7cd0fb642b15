"""The dashboard over many runs: first screen, memory and idle CPU for 10 / 50 / 200 / 500
synthetic finished runs of 10 folds x 100 epochs, this tree side by side with a git revision.

    python benchmarks/scale.py [--against REV] [--counts 10,50,200,500] [--rounds 3]

For each count, in one sitting and in turns: REV's dashboard, then this tree's twice (the
first time it finds runs without digests and writes them, as after an upgrade; the second is
every later start). Each measure is a fresh process: the time until the runs list shows its
first rows and every run, its peak resident memory, and its CPU over 10 s of doing nothing
after that. Then the longest stall of the UI thread (a 10 ms timer on it: the longest gap
between two ticks) while the monitor and the compare screen of each fixture run
(tests/fixtures/runs) open and draw, in alternating rounds, REV's and this tree's.
Everything is written under one temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if "--code" in sys.argv:  # measure the dfu_tui of another tree (see --against)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])

from _common import ROOT, scratch  # noqa: E402

IDLE_SECONDS = 10.0


async def measure(runs: Path, count: int) -> dict[str, Any]:
    """In this process: the first screen with `count` runs, then idle CPU."""
    from textual.widgets import DataTable

    from dfu_tui.tui.app import DfuApp

    start = time.perf_counter()
    app = DfuApp(runs, ROOT / "configs" / "default.toml")
    shown = None  # when the first rows were on screen
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            tables = app.screen.query("#runs")
            rows = tables.first(DataTable).row_count if tables else 0
            if rows and shown is None:
                shown = time.perf_counter() - start
            if rows == count:
                break
            await pilot.pause(0.01)
        first = time.perf_counter() - start
        await pilot.pause(1.0)  # what the first screen set off has settled
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import dfu_tui

    return {
        "first_rows_s": shown,
        "first_screen_s": first,
        "rss_mb": rss,
        "idle_cpu_percent": idle,
        "code": str(Path(dfu_tui.__file__).parents[1]),
    }


async def stall(runs: Path) -> dict[str, Any]:
    """In this process: the longest gap between two ticks of a 10 ms timer on the UI thread
    while the monitor, then the compare screen, of every run in `runs` open and draw."""
    from dfu_tui.tui.app import DfuApp

    app = DfuApp(runs, ROOT / "configs" / "default.toml")
    gaps: list[float] = []
    last = [0.0]

    def beat() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append(now - last[0])
        last[0] = now

    async def shown(name: str) -> None:
        while type(app.screen).__name__ != name:
            await pilot.pause(0.01)
        await pilot.pause(1.5)  # its worker's figures arrive and are drawn

    async with app.run_test(size=(120, 40)) as pilot:
        while type(app.screen).__name__ != "RunsScreen":
            await pilot.pause(0.01)
        await pilot.pause(1.0)  # the runs are listed
        app.set_interval(0.01, beat)
        await pilot.pause(0.2)
        for run in sorted(p.name for p in runs.iterdir()):
            app.open_run(run)
            await shown("MonitorScreen")
            app.open_compare(run)
            await shown("CompareScreen")
    import dfu_tui

    ordered = sorted(gaps)
    return {
        "longest_s": ordered[-1],
        "p99_s": ordered[int(0.99 * (len(ordered) - 1))],
        "ticks": len(gaps),
        "code": str(Path(dfu_tui.__file__).parents[1]),
    }


def synthetic_runs(runs: Path, count: int, template: Path) -> None:
    """`count` copies of one synthetic finished run (ids in order, logs identical)."""
    runs.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        target = runs / f"20260101-{k // 3600:02d}{k // 60 % 60:02d}{k % 60:02d}-{k:06x}"
        shutil.copytree(template, target)


def measured(code: Path, runs: Path, count: int) -> dict[str, Any]:
    """The figures of the dashboard of the tree at `code`, in a fresh process (`count` 0:
    the UI-thread stall of opening the monitor and compare screens of `runs`)."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(runs), str(count), "--code", str(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(code)},
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["code"]).resolve() != code.resolve():
        raise SystemExit(f"measured {result['code']}, not {code}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", default="d405592", help="git revision measured beside")
    parser.add_argument(
        "--counts", default="10,50,200,500", help="run counts ('': the stall alone)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the stall measure")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        runs, count = Path(args.measure[0]), int(args.measure[1])
        result = asyncio.run(measure(runs, count) if count else stall(runs))
        print(json.dumps(result))
        return
    base = scratch("dfu-scale-")
    other = base / "against"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(other), args.against],
        cwd=ROOT,
        check=True,
    )
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        from dashboard import synthetic_run

        template = base / "template" / "20260101-000000-000000"
        synthetic_run(template, folds=10, epochs=100)
        size = (template / "events.jsonl").stat().st_size
        print(f"each run: 10 folds x 2 branches x 100 epochs, log {size / 1e6:.1f} MB")
        print(
            f"{'runs':>5} {'tree':<22} {'first rows':>11} {'all listed':>11} {'peak RSS':>9} "
            f"{'idle CPU':>9}"
        )
        for count in (int(c) for c in args.counts.split(",") if c):
            runs = base / f"runs{count}"
            synthetic_runs(runs, count, template)
            rows = [
                (args.against, measured(other, runs, count)),
                ("this tree (no digests)", measured(ROOT, runs, count)),
                ("this tree", measured(ROOT, runs, count)),
            ]
            for name, r in rows:
                print(
                    f"{count:>5} {name:<22} {r['first_rows_s']:>9.2f} s "
                    f"{r['first_screen_s']:>9.2f} s "
                    f"{r['rss_mb']:>6.0f} MB {r['idle_cpu_percent']:>7.2f} %",
                    flush=True,
                )
            shutil.rmtree(runs)
        fixtures = base / "fixtures"
        shutil.copytree(ROOT / "tests" / "fixtures" / "runs", fixtures)
        longest: dict[str, list[float]] = {args.against: [], "this tree": []}
        for _ in range(args.rounds):
            for name, code in ((args.against, other), ("this tree", ROOT)):
                longest[name].append(measured(code, fixtures, 0)["longest_s"])
        for name, values in longest.items():
            print(
                f"UI-thread stall opening monitor and compare of the 2 fixture runs, {name}: "
                f"longest gap median {1000 * statistics.median(values):.0f} ms "
                f"(rounds: {', '.join(f'{1000 * v:.0f}' for v in values)} ms)",
                flush=True,
            )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
