"""Snapshots of the canonical screens at 100x32, from committed run directories of real runs."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from tests.helpers import open_form, until
from tests.tui.conftest import CANCELLED, COMPLETED, make_app

SIZE = (100, 32)


def test_runs_list(snap_compare, runs_dir: Path) -> None:
    assert snap_compare(make_app(runs_dir), terminal_size=SIZE)


def test_launch_form_with_weight_error(snap_compare, runs_dir: Path, monkeypatch) -> None:
    # the form's jobs default follows the machine (cores, free memory): fixed for the picture
    monkeypatch.setattr("dfu_tui.tui.screens.launch.default_jobs", lambda: 2)

    async def bad_weight(pilot: Pilot) -> None:
        form = await open_form(pilot)
        form.query_one("#weight-metadata", Input).value = "-0.2"
        # a data folder that does not exist: its one-line note, not a machine-dependent count
        form.query_one("#root", Input).value = "/nonexistent-dataset"
        note = form.query_one("#data-note")
        await until(pilot, lambda: "/nonexistent-dataset" in str(note.render()))
        await until(pilot, lambda: "must be >= 0" in str(form.query_one("#errors").render()))
        scroll = form.query_one("#launch-form")
        # scroll_end waits for a refresh of the layout: wait until it has landed at the end
        scroll.scroll_end(animate=False)
        await until(pilot, lambda: 0 < scroll.max_scroll_y == scroll.scroll_y)
        await pilot.pause()

    assert snap_compare(make_app(runs_dir), terminal_size=SIZE, run_before=bad_weight)


def test_monitor_with_collapse_flag(snap_compare, runs_dir: Path) -> None:
    app = make_app(runs_dir)

    async def open_monitor(pilot: Pilot) -> None:
        app.open_run(CANCELLED)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(130, 40), run_before=open_monitor)


def test_fold_detail(snap_compare, runs_dir: Path) -> None:
    app = make_app(runs_dir)

    async def open_detail(pilot: Pilot) -> None:
        app.open_fold_detail(COMPLETED, 1)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_detail)


def test_compare(snap_compare, runs_dir: Path) -> None:
    app = make_app(runs_dir)

    async def open_compare(pilot: Pilot) -> None:
        app.open_compare(COMPLETED)
        await pilot.pause()
        screen = app.screen
        await until(pilot, lambda: "Configured" in str(screen.query_one("#curve-title").render()))

    assert snap_compare(app, terminal_size=SIZE, run_before=open_compare)
