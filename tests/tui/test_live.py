"""The dashboard driving real runs: launch from the form, watch fold kappas arrive, stop, resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from dfu_tui.runs.state import load_state
from dfu_tui.tui.app import DfuApp
from dfu_tui.tui.plots import PlotPanel
from dfu_tui.tui.screens.launch import LaunchScreen
from dfu_tui.tui.screens.modals import ConfirmScreen, PreparingScreen
from dfu_tui.tui.screens.monitor import MonitorScreen
from tests.helpers import ROOT, open_form, until

pytestmark = pytest.mark.slow  # trains real models


@pytest.fixture
def heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFU_TUI_HEARTBEAT", "1")


async def test_launch_watch_stop_resume(tmp_path: Path, small_demo_master: Path, heartbeat) -> None:
    runs = tmp_path / "runs"
    # the default config with a small forest and no radar: the CNN's real training is what
    # the dashboard follows here
    config = tmp_path / "live.toml"
    text = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8")
    config.write_text(
        text + "\n[metadata_model]\nn_estimators = 40\n\n[radar]\nenabled = false\n", "utf-8"
    )
    app = DfuApp(runs, config)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        values = {
            "#root": str(small_demo_master),
            "#size": "32",
            "#folds": "2",
            "#epochs": "4",
            "#jobs": "1",  # one TensorFlow process: the other core runs the other tests
        }
        for selector, value in values.items():
            form.query_one(selector, Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+l", "ctrl+l", "ctrl+l")  # three presses: one run
        assert isinstance(app.screen, PreparingScreen) and app.launching
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen), 120)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        run_dir = runs / monitor.run_id
        assert [p.name for p in runs.iterdir()] == [monitor.run_id]
        assert os.stat(run_dir).st_mode & 0o777 == 0o700
        await until(pilot, lambda: load_state(run_dir).epochs)
        # the training-curve plot follows the running task as its epochs arrive
        plot = monitor.query_one("#epoch-plot", PlotPanel)
        await until(pilot, lambda: plot.figure is not None and not plot.figure.empty)
        assert plot.figure is not None
        task = plot.figure.title.split(":")[0].replace("fold ", "fold").replace(" ", "-")
        points = plot.figure.get("early-stopping split kappa").y
        logged = [e["val_kappa"] for e in load_state(run_dir).epochs if e["task"] == task]
        assert points and list(points) == logged[: len(points)]
        # Stop from the monitor, with confirmation.
        await pilot.press("s")
        await pilot.press("y")
        await until(pilot, lambda: load_state(run_dir).status == "cancelled", 60)
        await until(
            pilot, lambda: "cancelled" in str(monitor.query_one("#monitor-header").render())
        )
        # Resume: the run completes and both folds' kappas show in the table.
        await pilot.press("r")
        await until(pilot, lambda: load_state(run_dir).status == "completed")
        table = monitor.query_one("#folds", DataTable)

        def shown() -> list[str]:
            return [str(table.get_row_at(i)[2]) for i in range(2)] if table.row_count >= 2 else []

        # each fold's fused kappa as logged by the supervisor, to three places
        logged = sorted(load_state(run_dir).fold_results, key=lambda f: f["fold"])
        expected = [f"{f['combinations'][-1]['kappa']:.3f}" for f in logged]
        await until(pilot, lambda: shown() == expected)
        # The same form launched again asks first, naming that run; no starts nothing.
        await pilot.press("escape")
        again = await open_form(pilot)
        for selector, value in values.items():
            again.query_one(selector, Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30)
        asked = app.screen
        assert isinstance(asked, ConfirmScreen) and monitor.run_id in asked.question
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and not app.launching)
        assert [p.name for p in runs.iterdir()] == [monitor.run_id]
