"""The plot widgets hold the right series for the committed fixture runs (the data each widget
holds, read back against the run's own event log and stored predictions), screenshots land
in the run directory, and a plot is drawn again only when its figure changed."""

from __future__ import annotations

import json
import math
import stat
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from textual.css.query import NoMatches
from textual.widgets import DataTable

from dfu_tui.engine.curve import weight_curves
from dfu_tui.runs.figures import Figure
from dfu_tui.tui.messages import RunsUpdated
from dfu_tui.tui.plots import PlotPanel
from dfu_tui.tui.screens.compare import CompareScreen
from dfu_tui.tui.screens.detail import FoldDetailScreen
from dfu_tui.tui.screens.monitor import MonitorScreen
from tests.helpers import until
from tests.tui.conftest import CANCELLED, COMPLETED, FIXTURES, make_app

SIZE = (120, 40)


def events(run_id: str) -> list[dict[str, Any]]:
    path = FIXTURES / run_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def figure_of(screen: Any, selector: str) -> Figure:
    figure = screen.query_one(selector, PlotPanel).figure
    assert figure is not None, f"{selector} holds no figure"
    return figure


async def shown(pilot: Any, kind: Any) -> Any:
    """The screen of this kind once it is on top, composed, and its plots drawn (the monitor
    draws them after a refresh; compare's curve is computed on a thread and may stay hidden)."""
    app: Any = pilot.app

    def drawn() -> bool:
        if not isinstance(app.screen, kind) or not getattr(app.screen, "ready", True):
            return False  # the monitor mounts its panels one by one
        panels = list(app.screen.query(PlotPanel))
        try:  # a screen opened once its run's log is read may be composing still
            return bool(panels) and all(p.figure is not None or not p.display for p in panels)
        except NoMatches:
            return False

    await until(pilot, drawn)
    return app.screen


def title_of(screen: Any, selector: str) -> str:
    figure = screen.query_one(selector, PlotPanel).figure
    return "" if figure is None else str(figure.title)


def close(a: tuple[float, ...], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b, strict=True)
    )


class TestMonitorPlots:
    async def test_training_curve_shares_and_fold_points(self, runs_dir: Path) -> None:
        log = events(COMPLETED)
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            screen = await shown(pilot, MonitorScreen)
            # nothing running: the last image task that reported epochs
            task = [e for e in log if e["kind"] == "epoch"][-1]["task"]
            mine = [e for e in log if e["kind"] == "epoch" and e["task"] == task]
            curve = figure_of(screen, "#epoch-plot")
            assert curve.labels[:3] == ["train kappa", "early-stopping split kappa", "loss"]
            assert close(curve.get("train kappa").y, [e["train_kappa"] for e in mine])
            assert close(curve.get("early-stopping split kappa").y, [e["val_kappa"] for e in mine])
            assert curve.get("loss").side == "right"
            assert close(curve.get("loss").y, [e["loss"] for e in mine])
            best = next(
                e["best_epoch"] for e in log if e["kind"] == "branch_finished" and e["task"] == task
            )
            assert curve.get(f"best epoch {best}").x == (float(best),)
            assert "kappa (unweighted)" in curve.title

            shares = figure_of(screen, "#share-plot")
            for c in "IPR":
                predicted = [e["val_predicted_share"][c] for e in mine]
                assert close(shares.get(f"{c} predicted").y, predicted)
                assert close(shares.get(f"{c} true").y, [mine[-1]["val_true_share"][c]])

            folds = figure_of(screen, "#fold-plot")
            finished = [e for e in log if e["kind"] == "fold_finished"]
            fused = [max(e["combinations"], key=lambda c: len(c["modalities"])) for e in finished]
            assert close(folds.get("kappa (unweighted)").y, [c["kappa"] for c in fused])
            assert close(folds.get("quadratic kappa").y, [c["quadratic_kappa"] for c in fused])
            mean = statistics.fmean(c["kappa"] for c in fused)
            line = next(s for s in folds.series if s.label.startswith("mean kappa"))
            assert line.kind == "hline" and math.isclose(line.y[0], mean)
            assert f"({len(fused)} fold{'' if len(fused) == 1 else 's'})" in line.label

    async def test_stepping_epochs_follows_the_task(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            screen = await shown(pilot, MonitorScreen)
            assert isinstance(screen, MonitorScreen)
            assert figure_of(screen, "#epoch-plot").title.startswith("fold 2 thermal_map")
            screen.selected_epoch = 0  # the first epoch of the run: fold 1's depth_rgb
            await until(pilot, lambda: title_of(screen, "#epoch-plot").startswith("fold 1 depth"))
            assert figure_of(screen, "#share-plot").title.startswith("fold 1 depth_rgb")
            await pilot.press("l")
            await until(pilot, lambda: title_of(screen, "#epoch-plot").startswith("fold 2 therm"))
            assert figure_of(screen, "#share-plot").title.startswith("fold 2 thermal_map")

    async def test_collapse_is_visible_in_the_share_plot(self, runs_dir: Path) -> None:
        # the cancelled fixture's image branch predicts one class for most epochs
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(CANCELLED)
            shares = figure_of(await shown(pilot, MonitorScreen), "#share-plot")
            top = [max(shares.get(f"{c} predicted").y[k] for c in "IPR") for k in range(2)]
            assert max(top) > 0.9  # one class took (nearly) every prediction

    async def test_no_redraw_without_new_events(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            screen = await shown(pilot, MonitorScreen)
            plots = list(screen.query(PlotPanel))
            before = [p.plot.draws for p in plots]
            assert all(n == 1 for n in before)
            for _ in range(5):
                screen.post_message(RunsUpdated({COMPLETED}))
            await pilot.pause()
            await until(pilot, lambda: not screen._plots_pending)  # the redraw has run
            await pilot.pause()
            assert [p.plot.draws for p in plots] == before


def title_line(plot: Any) -> str:
    """The line above the plot's frame: where plotext writes the title."""
    lines = plot.drawing().plain.splitlines()
    frame = next(i for i, line in enumerate(lines) if "┌" in line)
    return lines[frame - 1].strip() if frame else ""


class TestTitles:
    async def test_every_plot_says_what_it_shows_at_80x24(self, runs_dir: Path) -> None:
        """plotext leaves out a title wider than the plot: each title is there, whole or
        shortened to the frame with "…", at 80 columns."""
        from dfu_tui.tui.plots import FigurePlot

        app = make_app(runs_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(CANCELLED)
            monitor = await shown(pilot, MonitorScreen)
            plots = [p for p in monitor.query(FigurePlot) if p.figure is not None]
            assert len(plots) == 3
            for plot in plots:
                assert title_line(plot) == plot.figure.title  # they fit
            wide = Figure(
                "fold 1 depth_map: " + "a title wider than the frame " * 4,
                series=plots[0].figure.series,
            )
            plots[0].show(wide)
            line = title_line(plots[0])
            assert line.endswith("…") and wide.title.startswith(line[:-1])
            assert len(line) > 40  # shortened to the frame, not dropped


class TestFoldDetailPlots:
    async def test_heatmap_and_f1_bars(self, runs_dir: Path) -> None:
        log = events(COMPLETED)
        fold = next(e for e in log if e["kind"] == "fold_finished" and e["fold"] == 1)
        fused = max(fold["combinations"], key=lambda c: len(c["modalities"]))
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_fold_detail(COMPLETED, 1)
            screen = await shown(pilot, FoldDetailScreen)
            table = screen.query_one("#confusion", DataTable)
            for i, row in enumerate(fused["confusion"]):
                total = sum(row)
                for j, count in enumerate(row):
                    cell = str(table.get_cell_at((i, j + 1)))
                    assert cell.split()[0] == str(count)
                    assert f"{count / total:.0%}" in cell
            f1 = figure_of(screen, "#f1-plot")
            name = "+".join(fused["modalities"])
            assert f1.labels[0] == name and all(s.kind == "bar" for s in f1.series)
            assert close(f1.get(name).y, [fused["f1"][c] for c in "IPR"])
            for branch, metrics in fold["branches"].items():
                assert close(f1.get(f"{branch} alone").y, [metrics["f1"][c] for c in "IPR"])


class TestComparePlot:
    async def test_curve_band_marks_and_reference_lines(self, runs_dir: Path) -> None:
        combo = ["metadata", "depth_rgb", "thermal_map"]
        # the expected curve, straight from the stored probabilities
        scored = []
        for k in (1, 2):
            preds = {
                b: np.load(FIXTURES / COMPLETED / "predictions" / f"fold{k}_{b}.npz") for b in combo
            }
            scored.append(
                ({b: p["val_proba"] for b, p in preds.items()}, preds["metadata"]["val_label"])
            )
        grid, curves = weight_curves(scored, {"depth_rgb": 0.15, "thermal_map": 0.15})
        mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1)
        log = events(COMPLETED)
        finished = [e for e in log if e["kind"] == "fold_finished"]

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_compare(COMPLETED)
            screen = await shown(pilot, CompareScreen)
            await until(
                pilot, lambda: screen.query_one("#curve-plot", PlotPanel).figure is not None
            )
            figure = figure_of(screen, "#curve-plot")
            line = figure.get("mean over 2 folds")
            assert close(line.x, list(grid)) and close(line.y, list(mean))
            band = figure.get("±1 sd")
            assert band.kind == "band"
            assert close(band.y, list(mean - sd)) and close(band.upper, list(mean + sd))
            at = int(np.abs(grid - 0.7).argmin())
            assert figure.get(f"configured 0.70: {mean[at]:.3f}").x == (0.7,)
            best = int(np.argmax(mean))
            top = next(s for s in figure.series if s.label.startswith("highest"))
            assert top.x == (grid[best],) and math.isclose(top.y[0], mean[best])
            for b in combo:
                expected = statistics.fmean(e["branches"][b]["kappa"] for e in finished)
                ref = next(s for s in figure.series if s.label.startswith(f"{b} alone"))
                assert ref.kind == "hline" and math.isclose(ref.y[0], expected)


class TestWithoutColour:
    async def test_series_differ_by_glyph_not_only_by_colour(self, runs_dir: Path) -> None:
        """With the colours stripped, each plot's series still differ: every series group has
        its own glyph in the legend and on the plot (points, bar fill), reference lines a
        style of their own; the colours are Okabe-Ito's."""
        from rich.text import Text

        from dfu_tui.tui.plots import GLYPHS, LEVEL_COLOURS, PALETTE, FigurePlot

        okabe_ito = {"#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#D55E00"}
        assert set(PALETTE) | set(LEVEL_COLOURS.values()) <= okabe_ito
        app = make_app(runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            app.open_compare(COMPLETED)
            screen = await shown(pilot, CompareScreen)
            panel = screen.query_one("#curve-plot", PlotPanel)
            await until(pilot, lambda: panel.figure is not None)
            await pilot.pause()
            figure = panel.figure
            assert figure is not None and len(figure.series) >= 4
            legend = panel.plot.legend()
            marks = [span.style for span in legend.spans]
            assert marks, "the legend's marks are coloured"
            plain = legend.plain
            entries = [plain[span.start : span.end] for span in legend.spans]
            groups = {s.group or s.label for s in figure.series}
            by_group: dict[str, set[str]] = {}
            for s, mark in zip(figure.series, entries, strict=True):
                by_group.setdefault(s.group or s.label, set()).add(mark)
            # no two groups read the same without colour
            readings = [frozenset(v) for v in by_group.values()]
            assert len(set(readings)) == len(groups), by_group
            # the glyphs of the line and point series are drawn on the plot itself
            drawn = panel.plot.drawing()
            text = drawn.plain if isinstance(drawn, Text) else str(drawn)
            plot = panel.query_one(FigurePlot)
            for s in figure.series:
                if s.kind in ("line", "scatter"):
                    assert plot.glyph(s) in GLYPHS and plot.glyph(s) in text, s.label


class TestScreenshots:
    async def test_ctrl_s_saves_into_the_run_directory(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.open_run(COMPLETED)
            await shown(pilot, MonitorScreen)
            await pilot.press("ctrl+s")
            await until(pilot, lambda: list((runs_dir / COMPLETED).glob("screenshot-*.svg")))
            shot = next((runs_dir / COMPLETED).glob("screenshot-monitor-*.svg"))
            assert stat.S_IMODE(shot.stat().st_mode) == 0o600
            assert "<svg" in shot.read_text() and "Per-fold kappa" in shot.read_text().replace(
                "&#160;", " "
            )
            assert any(
                str(shot) in str(n.message).replace("\u200b", "") for n in app._notifications
            )
            await pilot.press("ctrl+s")  # a second one never overwrites the first
            await until(pilot, lambda: len(list((runs_dir / COMPLETED).glob("screenshot-*"))) == 2)

    async def test_runs_list_screenshot_and_palette_entry(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert titles.count("Screenshot") == 1 and "Report" in titles
            await pilot.press("ctrl+s")
            await until(pilot, lambda: list(runs_dir.glob("screenshot-runs-*.svg")))
            for run in (COMPLETED, CANCELLED):
                assert not list((runs_dir / run).glob("screenshot-*"))


async def press_p(pilot: Any, run: Path) -> str:
    """Press `p`; the text of the run's report once the app says it was written (0600)."""
    app: Any = pilot.app
    await pilot.press("p")
    await until(pilot, lambda: any("Report written" in str(n.message) for n in app._notifications))
    target = run / "report.html"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    return target.read_text()


class TestReportKey:
    async def test_p_writes_the_report_through_the_command_line(self, runs_dir: Path) -> None:
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(CANCELLED)
            await shown(pilot, MonitorScreen)
            page = await press_p(pilot, runs_dir / CANCELLED)
            assert "Partial report" in page and CANCELLED in page

    async def test_p_in_the_runs_list_reports_the_highlighted_run(self, runs_dir: Path) -> None:
        from textual.widgets import DataTable

        from dfu_tui.tui.screens.runs import RunsScreen

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, RunsScreen)
                    and app.screen.query_one("#runs", DataTable).row_count == 2
                ),
            )
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            assert screen.selected_run() == CANCELLED  # newest first
            await pilot.press("down")  # the older run: the completed one
            await until(pilot, lambda: screen.selected_run() == COMPLETED)
            page = await press_p(pilot, runs_dir / COMPLETED)
            assert COMPLETED in page and "Partial report" not in page
            assert not (runs_dir / CANCELLED / "report.html").exists()


class TestTheme:
    async def test_a_new_theme_keeps_the_colour_blind_safe_series(self, runs_dir: Path) -> None:
        """A theme changes the plot's frame, not what tells its series apart: they keep
        their Okabe-Ito colours and glyphs, and the plot and its legend are drawn again."""
        from textual.color import Color

        from dfu_tui.tui.plots import PALETTE

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(COMPLETED)
            screen = await shown(pilot, MonitorScreen)
            plot = screen.query_one("#epoch-plot", PlotPanel).plot
            series = plot.figure.series[0]
            before = (plot.colour(series), plot.glyph(series))
            assert before[0] == Color.parse(PALETTE[0]).rgb
            drawn = plot.render()
            app.theme = "gruvbox"
            await until(pilot, lambda: plot.render() is not drawn, timeout=10)
            assert (plot.colour(series), plot.glyph(series)) == before
            legend = str(screen.query_one("#epoch-plot .legend").render())
            assert "train kappa" in legend and before[1] in legend


def test_the_curve_view_is_one_for_report_and_screen_and_invents_no_weight(tmp_path) -> None:
    """The report and the compare screen draw the same `curve_view`; with the run's config
    unread it marks no configured weight (it used to assume 0.70)."""
    import shutil

    from dfu_tui.config import load_config
    from dfu_tui.runs.analysis import curve_view
    from dfu_tui.runs.rundir import RunDir
    from dfu_tui.runs.state import load_state
    from tests.tui.conftest import COMPLETED, FIXTURES

    run = Path(shutil.copytree(FIXTURES / COMPLETED, tmp_path / COMPLETED))
    state = load_state(run)
    combo = next(c for c in state.combinations if "metadata" in c and len(c) > 1)
    cfg = load_config(run / "config.toml")
    known = curve_view(RunDir(run), state, cfg, combo)
    assert (
        known.figure is not None
        and known.configured == cfg.fusion_weights(tuple(combo))["metadata"]
    )
    assert any(s.kind == "vline" for s in known.figure.series)
    unknown = curve_view(RunDir(run), state, None, combo)
    assert unknown.configured is None and unknown.figure is not None
    assert not any(s.kind == "vline" for s in unknown.figure.series)
    alone = curve_view(RunDir(run), state, cfg, ["metadata"])
    assert alone.figure is None and "needs metadata and an image branch" in alone.problem


async def test_the_palette_offers_the_actions_of_the_open_run(runs_dir: Path) -> None:
    """ctrl+p over a run's monitor lists Open, Stop, Export and Report for that run (while the
    palette is open it is the app's screen; the commands must come from the one under it)."""
    from textual.command import CommandPalette
    from textual.widgets import OptionList

    app = make_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(COMPLETED)
        await shown(pilot, MonitorScreen)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"run")
        results = app.screen.query_one(OptionList)

        def offered() -> str:
            return " ".join(
                str(results.get_option_at_index(i).prompt) for i in range(results.option_count)
            )

        await until(pilot, lambda: "Stop run" in offered() and "Export run" in offered())
        assert "Open run" in offered()


class TestFitKey:
    async def test_m_fits_a_completed_run_in_the_background_and_not_another(
        self, runs_dir: Path
    ) -> None:
        """`M` on a completed run starts `dfu-tui fit RUN --detach` (its log appears in the
        run's logs/) and says where the model goes; on a cancelled run it says why not and
        starts nothing; the palette offers it too."""
        from dfu_tui.tui.screens.runs import RunsScreen

        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            app.open_run(CANCELLED)
            await shown(pilot, MonitorScreen)
            await pilot.press("M")
            await until(
                pilot, lambda: any("completed run" in str(n.message) for n in app._notifications)
            )
            assert not (runs_dir / CANCELLED / "logs" / "fit.log").exists()
            assert "Fit model" in [c.title for c in app.get_system_commands(app.screen)]
            await pilot.press("escape")
            app.open_run(COMPLETED)
            await shown(pilot, MonitorScreen)
            await pilot.press("M")
            await until(
                pilot,
                lambda: any(
                    "Fitting the final model" in str(n.message) for n in app._notifications
                ),
            )
            assert (runs_dir / COMPLETED / "logs" / "fit.log").exists()


class TestStreaming:
    """While a run streams, what an SSH link carries: the numbers change as each event
    comes, the plots at most once a second (and at once for a key), and nothing lays the
    screen out again (each layout repainted every scrollbar: 1.6 of 2.5 KB/s at 80x24)."""

    async def test_epochs_redraw_numbers_at_once_plots_at_most_each_second(
        self, runs_dir: Path, monkeypatch
    ) -> None:
        from textual.widget import Widget

        from dfu_tui.runs.events import EventWriter

        layouts: list[str] = []
        refresh = Widget.refresh

        def spy(self: Widget, *regions: Any, layout: bool = False, **kw: Any) -> Widget:
            if layout:
                layouts.append(f"{type(self).__name__}#{self.id}")
            return refresh(self, *regions, layout=layout, **kw)

        writer = EventWriter(runs_dir / CANCELLED / "events.jsonl")
        writer.emit("run_resumed", pending=["fold2-depth_map"], jobs=1, heartbeat=5, pid=0, pgid=0)
        task = {"task": "fold2-depth_map", "fold": 2, "branch": "depth_map"}
        writer.emit("task_started", **task, pid=1)

        def epoch(n: int) -> None:
            writer.emit("epoch", **task, epoch=n, max_epochs=20, loss=1.0 / n, flags=[])

        epoch(1)
        app = make_app(runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(CANCELLED)
            screen = await shown(pilot, MonitorScreen)
            plot = screen.query_one("#epoch-plot", PlotPanel).plot
            await pilot.pause(MonitorScreen.PLOT_INTERVAL)  # the first drawing is old enough
            draws = plot.draws
            monkeypatch.setattr(Widget, "refresh", spy)
            for n in range(2, 6):  # one event at a time, each shown before the next
                epoch(n)
                await until(pilot, shows(screen, "#task", f"epoch {n}/20"))
            # four updates, each shown at once in the numbers: at most two plot drawings
            # (at once if the last was a second ago, the rest after the interval)
            assert plot.draws - draws <= 2
            await until(pilot, lambda: not screen._plots_pending)
            assert 1 <= plot.draws - draws <= 2
            assert plot.figure is not None  # caught up: the last epoch is drawn
            assert max(x for s in plot.figure.series for x in s.x) == 5
            assert layouts == []
            monkeypatch.setattr(Widget, "refresh", refresh)
            # an epoch within the interval waits for it; a key does not: the plots follow it
            epoch(6)
            await until(pilot, lambda: "epoch 6/20" in text(screen, "#task"))
            assert screen._plots_pending and screen._plots_timer is not None
            await pilot.press("left_square_bracket")
            await until(pilot, lambda: not screen._plots_pending, timeout=0.5)
        writer.close()


def shows(screen: Any, selector: str, wanted: str) -> Any:
    """A check that the Static at `selector` shows `wanted`."""
    return lambda: wanted in text(screen, selector)


def text(screen: Any, selector: str) -> str:
    from textual.widgets import Static

    return str(screen.query_one(selector, Static).render())


async def test_update_text_lays_out_only_when_the_height_changes(monkeypatch) -> None:
    from textual.app import App, ComposeResult
    from textual.widget import Widget
    from textual.widgets import Static

    from dfu_tui.tui.widgets import update_text

    class One(App[None]):
        CSS = "Static { width: 20; height: auto; }"

        def compose(self) -> ComposeResult:
            yield Static("[b]elapsed[/b] 0:01", id="t")

    layouts: list[str] = []
    refresh = Widget.refresh

    def spy(self: Widget, *regions: Any, layout: bool = False, **kw: Any) -> Widget:
        if layout:
            layouts.append(str(self.id))
        return refresh(self, *regions, layout=layout, **kw)

    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        widget = app.query_one("#t", Static)
        monkeypatch.setattr(Widget, "refresh", spy)
        update_text(widget, "[b]elapsed[/b] 0:02")  # one line still
        await pilot.pause()
        assert layouts == [] and "0:02" in str(widget.render())
        update_text(widget, "[b]elapsed[/b] 0:03 and a longer line")  # wraps: two lines
        await pilot.pause()
        assert "t" in layouts and widget.size.height == 2
        # a widget as wide as its text: a longer text of the same height is laid out too
        widget.styles.width = "auto"
        await pilot.pause()
        layouts.clear()
        update_text(widget, "0:04")
        await pilot.pause()
        assert "t" in layouts and widget.size.width == 4
