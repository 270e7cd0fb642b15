"""A detached fit's heartbeat file: fitting while fresh, stale after two missed beats, and
nothing for a file that is damaged, a link or a FIFO."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dfu_tui.runs.fitbeat import fit_activity, write_fit_heartbeat
from dfu_tui.runs.rundir import RunDir


def test_fresh_then_stale(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert fit_activity(run) is None  # no fit
    write_fit_heartbeat(run, tmp_path / "model", "thermal_map: 3 epochs on 120 crops", 5.0)
    now = json.loads(run.fit_heartbeat.read_text())["at"]
    fit = fit_activity(run, now=now + 9)
    assert fit is not None and fit["state"] == "fitting" and fit["pid"] == os.getpid()
    assert fit["doing"].startswith("thermal_map") and fit["output"].endswith("model")
    stale = fit_activity(run, now=now + 11)  # two heartbeats missed: the process died
    assert stale is not None and stale["state"] == "stale" and stale["age_s"] == 11


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"at": "x", "every": 5, "pid": 1, "doing": "", "output": ""}',
        '{"at": 1, "every": 0, "pid": 1, "doing": "", "output": ""}',
        '{"at": 1e999, "every": 5, "pid": 1, "doing": "", "output": ""}',
        '{"at": 1, "every": 5, "pid": true, "doing": "", "output": ""}',
        "link",
        "fifo",
    ],
)
def test_a_damaged_heartbeat_says_nothing(tmp_path: Path, text: str) -> None:
    run = RunDir(tmp_path)
    if text == "link":
        (tmp_path / "elsewhere").write_text(
            json.dumps({"at": 1, "every": 5, "pid": 1, "doing": "", "output": ""})
        )
        run.fit_heartbeat.symlink_to(tmp_path / "elsewhere")
    elif text == "fifo":
        os.mkfifo(run.fit_heartbeat)
    else:
        run.fit_heartbeat.write_text(text)
    assert fit_activity(run) is None


async def test_the_dashboard_shows_a_fit_that_stopped_beating_as_stale(tmp_path: Path) -> None:
    """A fit that dies leaves its heartbeat file: the runs list says `fitting`, then, two
    heartbeats later and without reading the file again, `fit stale`."""
    import shutil

    from textual.widgets import DataTable

    from dfu_tui.tui.app import DfuApp
    from tests.helpers import REFRESH, ROOT, until
    from tests.tui.conftest import COMPLETED, FIXTURES

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    run = RunDir(runs / COMPLETED)
    write_fit_heartbeat(run, run.path / "model", "metadata: a forest", 1.0)
    now = [json.loads(run.fit_heartbeat.read_text())["at"] + 0.5]
    app = DfuApp(runs, ROOT / "configs" / "default.toml", REFRESH, lambda: now[0])
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await until(pilot, lambda: COMPLETED in [str(k.value) for k in table.rows])
        assert table.get_cell(COMPLETED, "model") == "fitting"
        now[0] += 5.0  # no heartbeat since: the process is gone
        await until(pilot, lambda: table.get_cell(COMPLETED, "model") == "fit stale", timeout=10)
