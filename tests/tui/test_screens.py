"""Pilot tests for each screen and key, on committed run directories of real runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Static

from dfu_tui.tui.plots import PlotPanel
from dfu_tui.tui.screens.compare import CompareScreen
from dfu_tui.tui.screens.detail import FoldDetailScreen
from dfu_tui.tui.screens.launch import LaunchScreen
from dfu_tui.tui.screens.modals import ConfirmScreen, HelpScreen
from dfu_tui.tui.screens.monitor import MonitorScreen
from dfu_tui.tui.screens.runs import RunsScreen
from tests.helpers import on_screen, open_form, until
from tests.tui.conftest import (
    CANCELLED,
    COMPLETED,
    FIXED_NOW,
    STRATEGIES,
    STRATEGY_FIXTURES,
    make_app,
)

SIZE = (100, 32)


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


class TestRunsScreen:
    async def test_a_longer_text_widens_its_column_and_a_same_width_one_repaints_its_cell(
        self,
    ) -> None:
        """A run's name or status that grows is shown whole (its column widens), while a
        text that fits repaints its cell alone."""
        from textual.app import App, ComposeResult
        from textual.widgets.data_table import ColumnKey

        from dfu_tui.tui.screens.runs import RunsTable

        class One(App[None]):
            def compose(self) -> ComposeResult:
                yield RunsTable()

        async with One().run_test(size=(100, 8)) as pilot:
            table = pilot.app.query_one(RunsTable)
            table.add_column("name", key="name")
            table.add_column("status", key="status")
            table.add_row("a", "running", key="r")
            await pilot.pause()
            column = table.columns[ColumnKey("name")]
            assert column.content_width == len("name")  # the label is the widest
            longer = "baseline, 5 folds"
            assert table.set_cell("r", "name", longer)
            await pilot.pause()
            assert column.content_width == len(longer)
            drawn = "".join(s.text for s in table.render_line(1))  # the first row
            assert longer in drawn and "running" in drawn
            count = table._update_count
            assert table.set_cell("r", "status", "done")  # fits: the cell alone
            assert table._update_count == count + 1 and column.content_width == len(longer)
            assert not table.set_cell("r", "status", "done")  # unchanged: nothing

    async def test_lists_runs_with_state(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE):
            table = app.screen.query_one("#runs", DataTable)
            assert table.row_count == 2

            def cell(run: str, column: str) -> str:
                return str(table.get_cell(run, column))

            assert cell(COMPLETED, "status") == "completed" and cell(COMPLETED, "folds") == "2/2"
            assert cell(CANCELLED, "status") == "cancelled" and cell(CANCELLED, "folds") == "1/3"
            assert cell(CANCELLED, "flags") == "1C 0W"
            # "best" on the criteria's scale with its n, a search's "best of N", and the
            # collapse flags of the best combination beside it
            assert cell(COMPLETED, "best").startswith("κ ")  # an older log
            assert "n=" in cell(COMPLETED, "best")
            assert "best of 7" in cell(COMPLETED, "best")
            assert cell(CANCELLED, "best").endswith(" 1C")

    async def test_at_80_columns_the_decisive_columns_are_on_screen(self, runs_dir: Path) -> None:
        """At 80x24 each run's short id, state, best figure on the criteria's scale and flags
        are on screen; a line says which columns lie further right; scrolling there keeps the
        run in view."""
        from dfu_tui.runs.rundir import short_ids
        from tests.tui.conftest import svg_text

        shutil.copytree(STRATEGY_FIXTURES, runs_dir, dirs_exist_ok=True)
        app = make_app(runs_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            await until(pilot, lambda: table.row_count == 4)
            await pilot.pause()
            screen = svg_text(app.export_screenshot())
            short = short_ids(app.catalog.ids())
            for run_id in (COMPLETED, CANCELLED, STRATEGIES):
                line = next(x for x in screen if f" {short[run_id]} " in x)
                status = app.catalog.state(run_id).effective_status(FIXED_NOW)
                best = str(table.get_cell(run_id, "best"))
                assert (
                    status in line and best in line and str(table.get_cell(run_id, "flags")) in line
                )
                assert run_id not in line  # its shortest unique prefix, as `status` prints
            hint = next(x for x in screen if "→ more columns:" in x)
            assert "combination" in hint and len(hint.rstrip()) <= 80
            for _ in range(12):
                await pilot.press("right")
            await pilot.pause()
            scrolled = svg_text(app.export_screenshot())
            assert table.scroll_x > 0
            assert any(f" {short[CANCELLED]} " in x for x in scrolled)

    async def test_filter(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("slash", *"cancel")
            table = app.screen.query_one("#runs", DataTable)
            assert [str(k.value) for k in table.rows] == [CANCELLED]
            await pilot.press("escape")
            assert table.row_count == 2

    async def test_help_and_stop_confirmation(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            # the keys of the screen under it first, built from its bindings
            here = app.screen.here
            assert here.startswith("# Keys here: runs")
            assert "| `n` | New run |" in here and "| `q` | Quit |" in here
            assert "Prev fold" not in here  # the monitor's, not this screen's
            await pilot.press("escape")
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert isinstance(app.screen, RunsScreen)

    async def test_a_changed_cell_repaints_that_cell_only(self, runs_dir: Path) -> None:
        """An update repaints the cells whose text changed, never the whole table (a heartbeat
        used to send the whole table to the terminal)."""
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            screen = app.screen
            table = screen.query_one("#runs", DataTable)
            await pilot.pause()
            repaints: list[tuple[object, ...]] = []
            original = table.refresh

            def spy(*regions: object, **kw: object) -> object:
                repaints.append(regions)
                return original(*regions, **kw)

            table.refresh = spy
            screen.refresh_rows({COMPLETED, CANCELLED})  # nothing changed
            assert repaints == []
            screen.marked.add(COMPLETED)  # the mark column of one row
            screen.refresh_rows({COMPLETED, CANCELLED})
            assert len(repaints) == 1 and repaints[0], repaints  # one region: the cell
            assert table.get_cell(COMPLETED, "") == "✓"
            await pilot.pause()
            row = table.get_row_index(COMPLETED)
            assert "✓" in table.render_line(row + 1).text  # the header is line 0

    async def test_key_bursts_never_stack_copies_of_a_screen(self, runs_dir: Path) -> None:
        """Monitor, compare, fold detail, monitor, compare, ... as fast as keys come: the
        stack holds each screen once (it held 13 screens), and one question at a time."""
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(3):
                for open_ in (
                    lambda: app.open_run(COMPLETED),
                    lambda: app.open_compare(COMPLETED),
                    lambda: app.open_fold_detail(COMPLETED, 1),
                    lambda: app.open_run(COMPLETED),
                ):
                    open_()
                    await pilot.pause()
            # the first ones waited for the run's log: the last of them opened
            await until(pilot, lambda: not app._waiting and isinstance(app.screen, MonitorScreen))
            await pilot.pause()
            kinds = [type(s).__name__ for s in app.screen_stack]
            assert kinds.count("MonitorScreen") == 1 and kinds.count("CompareScreen") <= 1
            assert len(app.screen_stack) <= 5, kinds
            assert isinstance(app.screen, MonitorScreen)
            for _ in range(4):
                app.confirm_stop(COMPLETED)
            await pilot.pause()
            assert sum(isinstance(s, ConfirmScreen) for s in app.screen_stack) == 1
            await pilot.press("n")

    async def test_new_run_appears_live(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            import shutil

            table = app.screen.query_one("#runs", DataTable)
            assert table.row_count == 2
            shutil.copytree(runs_dir / COMPLETED, runs_dir / "20261128-999999-abcdef")
            await until(pilot, lambda: table.row_count == 3, timeout=30)
            assert "20261128-999999-abcdef" in [str(k.value) for k in table.rows]


class TestMonitor:
    async def test_panels_mounting_one_by_one_survive_leaving_and_covering(
        self, runs_dir: Path
    ) -> None:
        """The monitor mounts its panels after its first frame: left at once, nothing is
        drawn into its removed widgets; covered while they mount, every plot is drawn when
        it is shown again."""
        from dfu_tui.tui.screens.modals import MessageScreen

        app = make_app(runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            app.open_run(CANCELLED)
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            await pilot.pause(0.5)  # its panels' plots would have been drawn by now
            app.open_run(COMPLETED)
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            app.push_screen(MessageScreen("covering", "the monitor"))
            await until(pilot, lambda: monitor.ready)
            await pilot.pause(0.3)
            app.pop_screen()
            await until(
                pilot,
                lambda: all(p.figure is not None for p in monitor.query(PlotPanel) if p.display),
            )
            assert len(monitor.query(PlotPanel)) == 3

    async def test_a_panel_whose_widgets_are_gone_draws_nothing(self, runs_dir: Path) -> None:
        """The race the test above can lose on a busy machine, made certain: every panel's
        widgets removed (as leaving the monitor while it mounts does, children first), then
        its mount handler, a redraw of numbers and plots, and a resize come: nothing is
        drawn, nothing raises, the dashboard goes on."""
        from textual import events
        from textual.geometry import Size

        from dfu_tui.tui.panels.base import Panel
        from dfu_tui.tui.screens.monitor import PANELS

        app = make_app(runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            app.open_run(CANCELLED)
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.ready)
            monitor = app.screen
            panels = list(monitor.query(Panel))
            assert len(panels) == len(PANELS)
            for panel in panels:
                await panel.remove_children()
                panel.post_message(events.Mount())
                panel.post_message(events.Resize(Size(100, 30), Size(100, 30)))
            monitor.redraw(at_once=True)
            await pilot.pause(0.3)
            assert app.return_code is None and app.is_running
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))

    async def test_the_event_log_wraps_whole_lines_after_a_resize(self, runs_dir: Path) -> None:
        """Every event line, a long flag's included, is in the log whole at 120 columns and
        again after the terminal shrinks to 80 (wrapped anew, nothing lost in the middle)."""
        import re

        from rich.text import Text
        from textual.widgets import RichLog

        from dfu_tui.runs.state import load_state
        from dfu_tui.tui.panels.events import event_line

        expected = [
            Text.from_markup(line).plain
            for e in load_state(runs_dir / CANCELLED).log
            if (line := event_line(e))
        ]
        assert any(len(x) > 80 for x in expected)  # a flag line longer than the screen

        def squeezed(text: str) -> str:
            return re.sub(r"\s+", "", text)

        app = make_app(runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            app.open_run(CANCELLED)
            await until(
                pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.query("#log")
            )
            log = app.screen.query_one("#log", RichLog)
            for size in ((120, 40), (80, 24), (100, 30)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                await until(pilot, lambda: len(log.lines) >= len(expected))
                shown = squeezed("".join(strip.text for strip in log.lines))
                for line in expected:
                    assert squeezed(line) in shown, (size, line)
                widest = max(strip.cell_length for strip in log.lines)
                assert widest <= log.scrollable_content_region.width, (size, widest, log.size)

    async def test_fold_table_distribution_and_collapse_flag(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(CANCELLED)
            await on_screen(pilot, "MonitorScreen")
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            folds = screen.query_one("#folds", DataTable)
            assert folds.row_count == 3 + 2  # fold 1 done, 2 and 3 pending, mean and sd rows
            assert "COLLAPSE dominant_class: R 0.63 of predictions, true 0.03" in text_of(
                screen, "#flags"
            )
            assert "cancelled" in text_of(screen, "#monitor-header")
            assert "minimum" in text_of(screen, "#verdict")

    async def test_each_panel_repaints_only_what_changed(self, runs_dir: Path) -> None:
        """The monitor's panels are widgets that change on screen only what changed: a redraw
        with nothing new rebuilds no table row and updates no text; choosing another fold
        changes the distribution's title, never the per-fold table."""
        from dfu_tui.tui.panels.base import Panel

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            await on_screen(pilot, "MonitorScreen")
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            panels = list(screen.query(Panel))
            assert {p.id for p in panels} >= {
                "folds-panel",
                "task-panel",
                "dist-panel",
                "features-panel",
                "verdict-panel",
                "log-panel",
            }
            folds = screen.query_one("#folds", DataTable)
            keys = list(folds.rows)
            updates: list[str] = []
            for box in screen.query(Static):
                original = box.update

                def counting(*args, _box=box, _original=original, **kwargs):
                    updates.append(str(_box.id))
                    return _original(*args, **kwargs)

                box.update = counting  # type: ignore[method-assign]
            screen.redraw()
            await pilot.pause()
            assert updates == [] and list(folds.rows) == keys
            await pilot.press("left_square_bracket")
            assert "dist-title" in updates and list(folds.rows) == keys

    async def test_fold_keys_and_detail(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            await on_screen(pilot, "MonitorScreen")
            assert "fold 2 (latest)" in text_of(app.screen, "#dist-title")
            await pilot.press("left_square_bracket")
            assert "fold 1," in text_of(app.screen, "#dist-title")
            await pilot.press("d")
            assert isinstance(app.screen, FoldDetailScreen) and app.screen.fold == 1
            confusion = app.screen.query_one("#confusion", DataTable)
            assert confusion.row_count == 3
            per_class = app.screen.query_one("#f1", DataTable)
            labels = [str(c.label) for c in per_class.columns.values()]
            assert {"sensitivity", "specificity", "ROC AUC"} <= set(labels)
            # a run logged before the clinical scores says so, not a made-up number
            assert "logged before" in text_of(app.screen, "#calibration")
            await pilot.press("escape", "l")
            assert "fold 2 (latest)" in text_of(app.screen, "#dist-title")
            await pilot.press("comma", "comma")
            title = text_of(app.screen, "#dist-title")
            assert "fold2-thermal_map epoch 3/4, inner validation" in title
            await pilot.press("l")
            assert "fold 2 (latest)" in text_of(app.screen, "#dist-title")


class TestCompare:
    async def test_ranking_and_curve(self, runs_dir: Path, monkeypatch) -> None:
        """The ranking (a paired test per combination) and the curve are computed on worker
        threads, not on the UI thread."""
        import threading

        from dfu_tui.tui.screens import compare

        threads: list[str] = []
        real = compare.ranked

        def ranked(*args: Any) -> Any:
            threads.append(threading.current_thread().name)
            return real(*args)

        monkeypatch.setattr(compare, "ranked", ranked)
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "c")
            screen = await on_screen(pilot, "CompareScreen")
            assert isinstance(screen, CompareScreen) and screen.run_id == COMPLETED
            ranking = screen.query_one("#ranking", DataTable)
            assert ranking.row_count == 7
            assert len(threads) == 1 and threads[0] != threading.main_thread().name
            # the curve is computed on a worker thread from the stored predictions
            await until(pilot, lambda: "Fusion-weight curve" in text_of(screen, "#curve-title"))
            title = text_of(screen, "#curve-title")
            assert "Fusion-weight curve" in title and "Configured 0.70" in title
            assert "validation folds" in title
            figure = screen.query_one("#curve-plot", PlotPanel).figure
            assert figure is not None and any(
                s.kind == "vline" and s.x == (0.7,) for s in figure.series
            )

    async def test_a_ranking_that_fails_is_one_line_and_the_dashboard_goes_on(
        self, runs_dir: Path, monkeypatch
    ) -> None:
        from dfu_tui.tui.screens import compare

        def ranked(*args: Any) -> Any:
            raise ValueError("a fold without its combinations")

        monkeypatch.setattr(compare, "ranked", ranked)
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_compare(COMPLETED)
            screen = await on_screen(pilot, "CompareScreen")
            title = text_of(screen, "#ranking-title")
            assert (
                title == "cannot rank the combinations: ValueError: a fold without its combinations"
            )
            assert screen.query_one("#ranking", DataTable).row_count == 0
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, CompareScreen))

    async def test_at_80_columns_each_row_shows_its_paired_difference_and_verdict(
        self, runs_dir: Path
    ) -> None:
        from tests.tui.conftest import svg_text

        shutil.copytree(STRATEGY_FIXTURES, runs_dir, dirs_exist_ok=True)
        app = make_app(runs_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_compare(STRATEGIES)
            await until(
                pilot,
                lambda: isinstance(app.screen, CompareScreen) and app.screen.query("#ranking"),
            )
            ranking = app.screen.query_one("#ranking", DataTable)
            await until(pilot, lambda: ranking.row_count > 0)
            await pilot.pause()
            line = next(
                x for x in svg_text(app.export_screenshot()) if "metadata+thermal_map  " in x
            )
            versus, verdict = (str(c) for c in ranking.get_row_at(0)[1:3])
            assert "[" in versus and versus.split()[-1] in ("beats", "≈", "worse")
            assert versus in line and verdict in line and "min" in verdict and "ideal" in verdict


class TestLaunchForm:
    async def test_weight_errors_gate_launch(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_form(pilot)
            assert isinstance(screen, LaunchScreen)
            launch = screen.query_one("#launch", Button)
            assert not launch.disabled
            assert "1 combination x 3 folds = 6 tasks" in text_of(screen, "#preview")
            weight = screen.query_one("#weight-metadata", Input)
            weight.value = "-0.7"
            await pilot.pause()
            assert launch.disabled
            errors = text_of(screen, "#errors")
            assert "fusion.weights.metadata: must be >= 0" in errors and "sum to 1" in errors
            weight.value = "0.6"
            await pilot.pause()
            assert launch.disabled and "must sum to 1, got 0.9" in text_of(screen, "#errors")
            weight.value = "0.7"
            await pilot.pause()
            assert not launch.disabled and text_of(screen, "#errors") == ""

    async def test_search_preview(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_form(pilot)
            screen.query_one("#use-depth_rgb").value = True
            screen.query_one("#search").value = True
            await pilot.pause()
            assert "7 combinations x 3 folds = 9 tasks" in text_of(screen, "#preview")

    async def test_feature_switches(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_form(pilot)
            screen.query_one("#exclude-treatment").value = True
            screen.query_one("#history").value = True
            screen.query_one("#compare").value = "timing"
            await pilot.pause()
            cfg = screen.valid
            assert cfg is not None
            assert cfg.features.exclude == ["treatment"] and cfg.features.history
            assert cfg.features.compare == "timing"
            preview = text_of(screen, "#preview")
            assert "= 9 tasks (3 branches per fold, one of them metadata without timing)" in preview
            screen.query_one("#compare").value = "history"
            screen.query_one("#history").value = False
            await pilot.pause()
            assert screen.valid is None
            assert "'history' needs features.history = true" in text_of(screen, "#errors")

    async def test_a_launch_identical_to_an_earlier_run_asks_first(self, runs_dir: Path) -> None:
        """Launching the settings an earlier run already has asks first, naming that run and
        its state; no leaves everything as it was (no run, the form usable again)."""
        from dfu_tui.tui.screens.modals import ConfirmScreen

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: COMPLETED in app.catalog.states)
            before = sorted(p.name for p in runs_dir.iterdir())
            assert app.start_run(runs_dir / COMPLETED / "config.toml", [], 1)
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = app.screen.question
            assert f"Run {COMPLETED} (completed)" in question and "Launch another" in question
            await pilot.press("n")
            await until(pilot, lambda: not app.launching)
            assert not isinstance(app.screen, ConfirmScreen)
            assert sorted(p.name for p in runs_dir.iterdir()) == before


def test_identical_means_every_setting_but_where_tasks_run(runs_dir: Path) -> None:
    """Same settings (a renamed key under its old name included) match; one changed setting
    does not; the executor does not count; a FIFO in a fingerprint's place is never waited on."""
    import os

    from dfu_tui.tui.app import identical_runs

    config = runs_dir / COMPLETED / "config.toml"
    runs = [runs_dir / COMPLETED, runs_dir / CANCELLED]
    assert identical_runs(runs, config, []) == [runs_dir / COMPLETED]
    assert identical_runs(runs, config, ["executor.kind='ray'"]) == [runs_dir / COMPLETED]
    assert identical_runs(runs, config, ["cv.seed=7"]) == []
    assert identical_runs(runs, runs_dir / "missing.toml", []) == []
    (runs_dir / CANCELLED / "fingerprint.json").unlink()
    os.mkfifo(runs_dir / CANCELLED / "fingerprint.json")
    assert identical_runs(runs, config, []) == [runs_dir / COMPLETED]  # and returned at all


@pytest.mark.slow
@pytest.mark.xdist_group("leak")  # the radar tests' run, made once
class TestFeaturePanels:
    async def test_monitor_and_fold_detail_show_the_radar(
        self, tmp_path: Path, shared_leak_run: Path
    ) -> None:
        """A real metadata-only run with the planted leak, compared without treatment."""
        import shutil

        runs = tmp_path / "runs"
        run = Path(shutil.copytree(shared_leak_run, runs / shared_leak_run.name))
        app = make_app(runs)
        async with app.run_test(size=(120, 60)) as pilot:
            app.open_run(run.name)
            await on_screen(pilot, "MonitorScreen")
            features = text_of(app.screen, "#features")
            assert "1. Dressing Grouped" in features and "WARNING dominant_feature" in features
            assert "metadata features" in features
            assert "with | without treatment" in features and "95% CI" in features
            await pilot.press("f")
            await pilot.pause()
            listing = text_of(app.screen, "#message")
            assert "  Dressing Grouped" in listing and "Left out, free_text (4):" in listing
            assert "Compared without treatment: Dressing Grouped" in listing
            await pilot.press("escape")
            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, FoldDetailScreen)
            detail = text_of(app.screen, "#detail-features")
            assert "1. Dressing Grouped" in detail
            assert "treatment_feature" in text_of(app.screen, "#detail-flags")


def test_dashboard_never_imports_the_training_stack() -> None:
    code = (
        "import sys; from pathlib import Path; import dfu_tui.tui.app as a; "
        "import dfu_tui.cli; "
        "bad = [m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def test_current_task_names_its_node(runs_dir: Path) -> None:
    """A task started on another machine (Ray) is shown with the node it runs on."""
    from dfu_tui.runs.events import EventWriter

    writer = EventWriter(runs_dir / CANCELLED / "events.jsonl")
    writer.emit("run_resumed", pending=["fold2-depth_map"], jobs=1, heartbeat=5, pid=0, pgid=0)
    writer.emit(
        "task_started", task="fold2-depth_map", fold=2, branch="depth_map", pid=1, node="gpu-2"
    )
    writer.emit(
        "epoch",
        task="fold2-depth_map",
        fold=2,
        branch="depth_map",
        epoch=1,
        max_epochs=20,
        loss=1.0,
        flags=[],
    )
    writer.close()
    app = make_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(CANCELLED)
        await on_screen(pilot, "MonitorScreen")
        assert "fold 2 depth_map on gpu-2: epoch 1/20" in text_of(app.screen, "#task")


def test_every_run_key_goes_through_the_one_run_action() -> None:
    """A key that acts on a run names its request in `run('...')` (one action for all, in
    the screens' base); no screen keeps a method per key."""
    import re

    from dfu_tui.tui.messages import RUN_REQUESTS
    from dfu_tui.tui.screens.base import DfuScreen

    named = []
    for screen in (RunsScreen, MonitorScreen):
        for binding in screen.BINDINGS:
            assert not isinstance(binding, tuple)
            found = re.fullmatch(r"run\('(\w+)'\)", binding.action)
            if found:
                assert found.group(1) in RUN_REQUESTS, binding
                named.append(found.group(1))
            assert binding.action.removeprefix("app.") not in RUN_REQUESTS, binding
        mine = [m for m in vars(screen) if m.removeprefix("action_") in RUN_REQUESTS]
        assert mine == [], f"{screen.__name__} keeps per-key methods: {mine}"
    assert {"stop", "resume", "export", "report", "compare", "open"} <= set(named)
    assert "action_run" in vars(DfuScreen)


#: The longest the UI thread may go without running its timers while monitor and compare
#: open (the target is 100 ms, measured by benchmarks/scale.py; a test machine running other
#: tests beside it gets ten times that, and 1.2 s once with three test processes on two
#: cores). A scipy import on the UI thread froze it 3.6 s (idle).
STALL_BUDGET = 2.0


async def test_opening_monitor_and_compare_never_stalls_the_ui_thread(runs_dir: Path) -> None:
    """A timer on the UI thread every 10 ms: the longest gap between its ticks while the
    runs' logs are read (on the watcher thread), the monitor and compare open and draw.
    Once the first screen is drawn, what is alive is frozen out of the garbage collector's
    walks (a walk of every object froze the UI thread 70-90 ms while a screen opened), and
    the collector is put back as it was when the dashboard ends."""
    import gc
    import time

    from dfu_tui.tui.app import GC_THRESHOLD

    threshold = gc.get_threshold()
    assert threshold != GC_THRESHOLD
    gc.unfreeze()  # what the test process froze between tests (`tests.conftest`)
    assert gc.get_freeze_count() == 0
    app = make_app(runs_dir)
    gaps: list[float] = []
    last = [0.0]

    def beat() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append(now - last[0])
        last[0] = now

    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await until(pilot, lambda: gc.get_freeze_count() > 0)
        assert gc.get_threshold() == GC_THRESHOLD
        app.set_interval(0.01, beat)
        await pilot.pause(0.1)
        for run_id in (COMPLETED, CANCELLED):
            app.open_run(run_id)
            screen = await on_screen(pilot, "MonitorScreen")
            await until(pilot, lambda s=screen: not s._plots_pending)  # type: ignore[misc]
            app.open_compare(run_id)
            screen = await on_screen(pilot, "CompareScreen")
            await pilot.pause(0.3)
        await pilot.pause(0.1)
    assert len(gaps) > 20
    assert max(gaps) < STALL_BUDGET, f"the UI thread stalled {max(gaps):.2f} s"
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold


async def test_the_footer_is_composed_again_only_when_its_keys_change() -> None:
    """A bindings refresh that leaves the shown keys as they were (a screen's activation, a
    focus change) keeps the footer's key widgets; one that disables a key redraws them."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding

    from dfu_tui.tui.widgets import Footer

    class Keys(App[None]):
        BINDINGS = [Binding("s", "stop", "Stop"), Binding("r", "resume", "Resume")]
        can_stop = True

        def compose(self) -> ComposeResult:
            yield Footer()

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "stop" and not self.can_stop else True

        def action_stop(self) -> None: ...

        def action_resume(self) -> None: ...

    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        footer = app.query_one(Footer)
        keys = list(footer.query("FooterKey"))
        assert [k.description for k in keys][:2] == ["Stop", "Resume"]  # type: ignore[attr-defined]
        for _ in range(3):
            app.refresh_bindings()
            await pilot.pause()
        assert list(footer.query("FooterKey")) == keys  # the same widgets: not composed again
        app.can_stop = False
        app.refresh_bindings()
        await pilot.pause()
        after = list(footer.query("FooterKey"))
        assert after != keys
        assert after[0].has_class("-disabled") and not after[1].has_class("-disabled")
