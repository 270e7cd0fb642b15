"""The runs list is true the moment it is shown again: runs that ended, went stale or were
started while another screen was shown are right at once, with no further event."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog

from dfu_tui.tui.app import DfuApp
from dfu_tui.tui.screens.monitor import MonitorScreen
from dfu_tui.tui.screens.runs import RunsScreen
from tests.helpers import REFRESH, until
from tests.tui.conftest import CANCELLED, COMPLETED, FIXED_NOW, ROOT

ENDINGS = {
    "completed": {"kind": "run_finished", "status": "completed", "seconds": 1.0},
    "cancelled": {"kind": "run_cancelled", "reason": "stopped by signal", "seconds": 1.0},
    "failed": {"kind": "run_failed", "reason": "ValueError: planted", "seconds": 1.0},
}


def append(run: Path, **event: object) -> None:
    with (run / "events.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"v": 1, **event}) + "\n")


def make_running(run: Path, now: float) -> None:
    """The run as it was before its final event, with a heartbeat just now."""
    lines = (run / "events.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (run / "events.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    (run / "summary.json").unlink(missing_ok=True)
    append(run, kind="heartbeat", ts=now, pid=1)


def status_of(app: DfuApp, run_id: str) -> str:
    table = app.screen.query_one("#runs", DataTable)
    return str(table.get_cell(run_id, "status"))


@pytest.mark.parametrize("ending", ["completed", "cancelled", "failed", "stale"])
async def test_the_list_is_right_when_shown_again(runs_dir: Path, ending: str) -> None:
    watched, other = runs_dir / COMPLETED, runs_dir / CANCELLED
    for run in (watched, other):
        make_running(run, FIXED_NOW)
    clock = [FIXED_NOW + 1]
    app = DfuApp(runs_dir, ROOT / "configs" / "default.toml", REFRESH, lambda: clock[0])
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert status_of(app, COMPLETED) == status_of(app, CANCELLED) == "running"
        app.open_run(COMPLETED)
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        # While the monitor of one run is shown: that run completes, the other ends as the
        # variant says, and a run is started from the command line.
        append(watched, **ENDINGS["completed"], ts=FIXED_NOW + 2)
        if ending == "stale":  # no event at all: its heartbeats stop
            clock[0] = FIXED_NOW + 60
            append(watched, kind="message", ts=FIXED_NOW + 3, text="nudge")
        else:
            append(other, **ENDINGS[ending], ts=FIXED_NOW + 2)
        started = runs_dir / "20261128-140000-cafe01"
        shutil.copytree(other, started)
        await until(pilot, lambda: app.catalog.states[COMPLETED].status == "completed")
        await until(pilot, lambda: "20261128-140000-cafe01" in app.catalog.states)
        await until(
            pilot, lambda: app.catalog.states[CANCELLED].effective_status(clock[0]) == ending
        )
        await pilot.pause(0.3)  # the app's clock tick has looked at the states
        await pilot.press("escape")
        await pilot.pause()  # one message round, no further event
        assert isinstance(app.screen, RunsScreen)
        assert status_of(app, COMPLETED) == "completed"
        assert status_of(app, CANCELLED) == ending
        table = app.screen.query_one("#runs", DataTable)
        assert "20261128-140000-cafe01" in [str(k.value) for k in table.rows]


async def test_the_monitor_log_keeps_what_came_while_hidden(runs_dir: Path) -> None:
    run = runs_dir / COMPLETED
    make_running(run, FIXED_NOW)
    app = DfuApp(runs_dir, ROOT / "configs" / "default.toml", REFRESH, lambda: FIXED_NOW + 1)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        app.open_run(COMPLETED)
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        monitor = app.screen
        app.action_help()  # another screen over the monitor
        await pilot.pause()
        append(run, kind="message", ts=FIXED_NOW + 2, text="task fold2-metadata started again")
        append(run, **ENDINGS["completed"], ts=FIXED_NOW + 3)
        await until(pilot, lambda: app.catalog.states[COMPLETED].status == "completed")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is monitor
        log = "\n".join(str(line.text) for line in monitor.query_one("#log", RichLog).lines)
        assert "started again" in log and "completed" in log
        assert "completed" in str(monitor.query_one("#monitor-header").render())
