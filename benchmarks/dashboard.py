"""Dashboard figures: first screen on 50 runs x 10 folds x 100 epochs, event-to-widget latency
(p95), idle CPU while a run streams, fusion-weight curve time, and training wall time with the
dashboard open vs. closed (side by side).

    python benchmarks/dashboard.py [--skip-training]
    python benchmarks/dashboard.py --against REV   # this tree and git revision REV, alternately

`--against` checks REV out in a temporary worktree and measures both trees twice, in turns
(REV, this, REV, this), so a before/after of a change is read side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, latest_summary, run_cli, scratch

if "--code" in sys.argv:  # measure the dfu_tui of another tree (see --against)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])

from dfu_tui.runs.events import EventWriter  # noqa: E402

CODE = Path(str(__import__("dfu_tui").__file__)).resolve().parents[1]  # the tree measured

FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "20261128-133808-50f261"


def synthetic_run(path: Path, folds: int = 10, epochs: int = 100, running: bool = False) -> None:
    """A run directory with a realistic event log of `folds` folds of `epochs` epochs each."""
    shutil.copytree(FIXTURE, path)
    (path / "events.jsonl").unlink()
    (path / "summary.json").unlink()
    events = EventWriter(path / "events.jsonl")
    branches = ["metadata", "thermal_map"]
    tasks = [f"fold{k}-{b}" for k in range(1, folds + 1) for b in branches]
    events.emit(
        "run_started",
        run_id=path.name,
        folds=folds,
        tasks=tasks,
        jobs=1,
        heartbeat=5,
        combinations=[branches],
        fusion={},
        pid=0,
        pgid=0,
    )
    shares = {"I": 0.3, "P": 0.55, "R": 0.15}
    metric = {
        "n": 50,
        "kappa": 0.3,
        "quadratic_kappa": 0.4,
        "accuracy": 0.6,
        "macro_f1": 0.5,
        "weighted_f1": 0.55,
        "train_kappa": 0.4,
        "f1": shares,
        "predicted_share": shares,
        "true_share": shares,
        "confusion": [[5, 3, 1], [3, 20, 2], [1, 2, 4]],
        "flags": [],
    }
    for k in range(1, folds + 1):
        for b in branches:
            events.emit("task_started", task=f"fold{k}-{b}", fold=k, branch=b, pid=0)
            for e in range(1, epochs + 1 if b != "metadata" else 1):
                events.emit(
                    "epoch",
                    task=f"fold{k}-{b}",
                    fold=k,
                    branch=b,
                    epoch=e,
                    max_epochs=epochs,
                    loss=1.0 / e,
                    train_kappa=0.3,
                    val_kappa=0.2,
                    val_predicted_share=shares,
                    val_true_share=shares,
                    flags=[{"rule": "chance_kappa", "level": "warning", "detail": "x"}],
                )
            events.emit("branch_finished", task=f"fold{k}-{b}", fold=k, branch=b, seconds=3.0)
        events.emit(
            "fold_finished",
            fold=k,
            branches={b: metric for b in branches},
            combinations=[{"modalities": branches, **metric}],
        )
    if not running:
        events.emit("run_finished", status="completed", seconds=100.0)
    events.close()


def emit_epoch(writer: EventWriter, n: int) -> None:
    """One epoch event of a streaming image task."""
    writer.emit(
        "epoch",
        task="fold1-thermal_map",
        fold=1,
        branch="thermal_map",
        epoch=n,
        max_epochs=1000,
        loss=0.5,
        train_kappa=0.3,
        val_kappa=0.2,
        flags=[],
        val_predicted_share={},
        val_true_share={},
    )


async def first_screen(runs: Path) -> float:
    from textual.widgets import DataTable

    from dfu_tui.tui.app import DfuApp

    start = time.perf_counter()
    app = DfuApp(runs, ROOT / "configs" / "default.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            tables = app.screen.query("#runs")
            if tables and tables.first(DataTable).row_count == 50:
                return time.perf_counter() - start
            await pilot.pause(0.01)


async def latency(runs: Path, samples: int = 40) -> list[float]:
    from textual.widgets import Static

    from dfu_tui.tui.app import DfuApp

    run = runs / "20990101-000000-stream"
    synthetic_run(run, folds=1, epochs=1, running=True)
    app = DfuApp(runs, ROOT / "configs" / "default.toml")
    writer = EventWriter(run / "events.jsonl")
    delays = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(run.name)
        await pilot.pause(0.3)
        task = app.screen.query_one("#task", Static)
        for n in range(2, samples + 2):
            await asyncio.sleep(float(np.random.default_rng(n).uniform(0.05, 0.3)))
            emit_epoch(writer, n)
            written = time.perf_counter()
            while f"epoch {n}/" not in str(task.render()):
                await pilot.pause(0.005)
            delays.append(time.perf_counter() - written)
    writer.close()
    return delays


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dashboard_in_tmux(runs: Path, session: str) -> int:
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "40",
            f"{sys.executable} -m dfu_tui --runs-dir {runs}",
        ],
        check=True,
        cwd=CODE,
    )
    time.sleep(3)
    out = subprocess.run(
        ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


def idle_cpu(runs: Path, seconds: float = 30.0) -> float:
    """CPU share of one core used by the dashboard (monitor open) while a run streams events."""
    run = runs / "20990101-000001-idle"
    synthetic_run(run, folds=1, epochs=1, running=True)
    pid = dashboard_in_tmux(runs, "dfu-bench-idle")
    stop = threading.Event()

    def stream() -> None:
        writer = EventWriter(run / "events.jsonl")
        n = 2
        while not stop.wait(0.5):  # two events a second, like a fast epoch loop
            emit_epoch(writer, n)
            writer.emit("heartbeat", pid=0)
            n += 1
        writer.close()

    thread = threading.Thread(target=stream)
    thread.start()
    subprocess.run(["tmux", "send-keys", "-t", "dfu-bench-idle", "Enter"], check=True)
    time.sleep(2)
    before, start = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    share = used / (time.perf_counter() - start)
    stop.set()
    thread.join()
    subprocess.run(["tmux", "kill-session", "-t", "dfu-bench-idle"], check=False)
    return share


def curve_time(workdir: Path) -> tuple[float, int]:
    from dfu_tui.runs.state import load_state

    runs = workdir / "curve"
    run_cli("run", "configs/default.toml", "--runs-dir", str(runs), "--set", "image_model.epochs=3")
    summary = latest_summary(runs)
    run = runs / summary["run_id"]
    state = load_state(run)
    combo, weights = ["metadata", "thermal_map"], {"metadata": 0.7, "thermal_map": 0.3}
    start = time.perf_counter()
    try:  # from the layering refactor on, the curve is computed in dfu_tui.runs
        from dfu_tui.runs.analysis import fusion_curve
        from dfu_tui.runs.rundir import RunDir

        folds = [f["fold"] for f in state.fold_results]
        curve = fusion_curve(RunDir(run), folds, combo, weights)
        old: Any = curve  # a tuple before the plots
        grid = curve.grid if hasattr(curve, "grid") else old[0]
    except ImportError:
        import importlib

        old_curve = importlib.import_module("dfu_tui.tui.screens.compare").fusion_curve

        grid, _ = old_curve(run, state, combo, weights)
    return time.perf_counter() - start, len(grid)


def training_with_dashboard(workdir: Path) -> tuple[list[float], list[float]]:
    closed, opened = [], []
    for i in range(2):
        runs = workdir / f"train{i}"
        seconds, _ = run_cli("run", "configs/quick.toml", "--runs-dir", str(runs / "closed"))
        closed.append(seconds)
        dashboard_in_tmux(runs / "open", f"dfu-bench-train{i}")
        seconds, _ = run_cli("run", "configs/quick.toml", "--runs-dir", str(runs / "open"))
        opened.append(seconds)
        subprocess.run(["tmux", "kill-session", "-t", f"dfu-bench-train{i}"], check=False)
    return closed, opened


def against(rev: str, rounds: int = 2) -> None:
    """Measure git revision `rev` and this tree in turns; print each figure side by side."""
    tree = scratch("dfu-dash-rev-") / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
    lines: dict[str, list[list[str]]] = {rev: [], "this tree": []}
    try:
        for _ in range(rounds):
            for name, code in ((rev, tree), ("this tree", ROOT)):
                out = subprocess.run(
                    [sys.executable, __file__, "--skip-training", "--code", str(code)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                lines[name].append(out.strip().splitlines())
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    for name, runs in lines.items():
        for i, figures in enumerate(runs, 1):
            print(f"[{name}, round {i}]")
            for line in figures:
                print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--against", metavar="REV", help="also measure this git revision")
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        against(args.against)
        return
    work = scratch("dfu-dash-")
    runs = work / "runs50"
    runs.mkdir()
    for i in range(50):
        synthetic_run(runs / f"20990101-{i:06d}-bench")
    size = sum(p.stat().st_size for p in runs.rglob("events.jsonl")) / 1e6
    print(
        f"first full screen, 50 runs x 10 folds x 100 epochs ({size:.0f} MB of events): "
        f"{asyncio.run(first_screen(runs)):.2f} s"
    )
    delays = asyncio.run(latency(work / "latency"))
    print(
        f"event written -> widget shows it: p50 {np.percentile(delays, 50) * 1000:.0f} ms, "
        f"p95 {np.percentile(delays, 95) * 1000:.0f} ms ({len(delays)} events)"
    )
    print(
        f"dashboard CPU while a run streams (monitor open): "
        f"{idle_cpu(work / 'idle') * 100:.1f} % of one core"
    )
    seconds, points = curve_time(work)
    print(f"fusion-weight curve ({points} weights, 3 folds, default demo): {seconds * 1000:.0f} ms")
    if not args.skip_training:
        closed, opened = training_with_dashboard(work)
        print(
            f"configs/quick.toml wall time, dashboard closed {closed} s, open {opened} s: "
            f"ratio {sum(opened) / sum(closed):.3f}"
        )


if __name__ == "__main__":
    main()
