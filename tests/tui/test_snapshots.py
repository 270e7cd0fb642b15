"""Snapshots of the canonical screens at 100x32, from committed run directories of real runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.helpers import open_form, until
from tests.tui.conftest import CANCELLED, COMPLETED, make_app

SIZE = (100, 32)
FORM_SIZE = (100, 60)  # the launch form, whole


async def settled(pilot: Pilot) -> None:
    """Until the screen's own workers (reading files, counting images) are done and nothing
    is left to lay out: the picture cannot change after this."""
    from textual.worker import WorkerState

    app = pilot.app
    busy = (WorkerState.PENDING, WorkerState.RUNNING)
    await until(
        pilot,
        lambda: not any(w.state in busy for w in app.workers if w.node is app.screen),
    )
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_list(snap_compare, runs_dir: Path, size: tuple[int, int]) -> None:
    """Realistic content: named and tagged runs (the strategy fixtures), a search, a
    cancelled run with a collapse."""
    import shutil

    from textual.widgets import DataTable

    from dfu_tui.tui.screens.runs import RunsScreen
    from tests.tui.conftest import STRATEGY_FIXTURES

    shutil.copytree(STRATEGY_FIXTURES, runs_dir, dirs_exist_ok=True)

    async def listed(pilot: Pilot) -> None:
        # the runs are read on a thread before the first screen: wait for both rows
        app = pilot.app

        def ready() -> bool:
            if not isinstance(app.screen, RunsScreen):
                return False
            tables = app.screen.query("#runs")
            return bool(tables) and tables.first(DataTable).row_count == 4

        await until(pilot, ready)
        await pilot.pause()

    assert snap_compare(make_app(runs_dir), terminal_size=size, run_before=listed)


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
        # the estimate from the fixture runs, once the runs are read (on a thread at start)
        preview = form.query_one("#preview")
        await until(pilot, lambda: "from earlier runs" in str(preview.render()))
        await settled(pilot)
        # the whole form on screen: no scroll position to race with a late layout
        assert form.query_one("#launch-form").max_scroll_y == 0

    assert snap_compare(make_app(runs_dir), terminal_size=FORM_SIZE, run_before=bad_weight)


# The screens with plots, at the smallest supported terminal and a roomy one.
PLOT_SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def plotted(pilot: Pilot, kind: type) -> None:
    """Until the screen of this kind is on top with every plot drawn."""
    from dfu_tui.tui.plots import PlotPanel

    app = pilot.app

    def ready() -> bool:
        from textual.css.query import NoMatches

        if not isinstance(app.screen, kind) or not getattr(app.screen, "ready", True):
            return False  # the monitor mounts its panels one by one
        panels = list(app.screen.query(PlotPanel))
        try:  # a screen opened once its run's log is read may be composing still
            return bool(panels) and all(p.figure is not None or not p.display for p in panels)
        except NoMatches:
            return False

    await until(pilot, ready)
    await pilot.pause()  # a frame: the plots in view ask for their drawings
    await until(pilot, lambda: not any(p.plot.pending for p in app.screen.query(PlotPanel)))
    await pilot.pause()


@PLOT_SIZES
def test_monitor_with_collapse_flag(snap_compare, runs_dir: Path, size: tuple[int, int]) -> None:
    from dfu_tui.tui.screens.monitor import MonitorScreen

    app = make_app(runs_dir)

    async def open_monitor(pilot: Pilot) -> None:
        app.open_run(CANCELLED)
        await plotted(pilot, MonitorScreen)

    assert snap_compare(app, terminal_size=size, run_before=open_monitor)


@PLOT_SIZES
def test_fold_detail(snap_compare, runs_dir: Path, size: tuple[int, int]) -> None:
    from dfu_tui.tui.screens.detail import FoldDetailScreen

    app = make_app(runs_dir)

    async def open_detail(pilot: Pilot) -> None:
        app.open_fold_detail(COMPLETED, 1)
        await plotted(pilot, FoldDetailScreen)

    assert snap_compare(app, terminal_size=size, run_before=open_detail)


@PLOT_SIZES
def test_compare(snap_compare, runs_dir: Path, size: tuple[int, int]) -> None:
    from dfu_tui.tui.plots import PlotPanel
    from dfu_tui.tui.screens.compare import CompareScreen

    app = make_app(runs_dir)

    async def open_compare(pilot: Pilot) -> None:
        app.open_compare(COMPLETED)
        await plotted(pilot, CompareScreen)
        plot = app.screen.query_one("#curve-plot", PlotPanel)
        await until(pilot, lambda: plot.figure is not None)
        # the curve is the last thing in the scroll box: scroll to the end until the layout has
        # taken the curve's title and legend in (a scroll before that stops short of the end):
        # the scroll and the scrollable height the same three times running
        from textual.containers import VerticalScroll

        box = app.screen.query_one(VerticalScroll)
        # the scrollbar's thumb is drawn to an eighth of a cell from a layout that settles
        # frame by frame: it raced (CI failed on one eighth). Its gutter stays; the content is
        # the picture's subject
        box.styles.scrollbar_visibility = "hidden"
        seen: list[tuple[float, float]] = []
        for _ in range(40):
            box.scroll_end(animate=False, immediate=True)
            await pilot.pause(0.05)
            seen.append((box.scroll_y, box.max_scroll_y))
            if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
                break
        assert box.scroll_y == box.max_scroll_y
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=open_compare)


def test_strategy_panel(snap_compare, strategy_runs: Path) -> None:
    """Every fusion strategy of one run, side by side in the monitor, at 80x24."""
    from tests.tui.conftest import STRATEGIES

    app = make_app(strategy_runs)

    async def open_panel(pilot: Pilot) -> None:
        from dfu_tui.tui.screens.monitor import MonitorScreen

        app.open_run(STRATEGIES)
        await plotted(pilot, MonitorScreen)
        table = app.screen.query_one("#strategies")
        await until(pilot, lambda: table.row_count == 6)
        app.screen.query_one("#strategies-panel").scroll_visible(animate=False, immediate=True)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_panel)


def test_runs_side_by_side(snap_compare, strategy_runs: Path) -> None:
    """Two runs marked with space and compared with c, at 80x24: paired by fold."""
    from tests.tui.conftest import LEARNED

    app = make_app(strategy_runs)

    async def compare(pilot: Pilot) -> None:
        from dfu_tui.tui.screens.runs_compare import RunsCompareScreen

        await until(pilot, lambda: app.loaded)
        await pilot.press("space", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, RunsCompareScreen))
        await until(pilot, lambda: app.screen.query_one("#runs-compare").row_count == 2)
        assert LEARNED in str(app.screen.query_one("#runs-compare").get_row_at(1)[0])
        app.clear_notifications()  # the "2 runs marked" toast: gone after a few seconds
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=compare)
