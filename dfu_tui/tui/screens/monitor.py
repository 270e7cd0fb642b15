"""The run monitor: a header and its panels (`tui/panels/`: per-fold kappa, current task,
prediction distribution with the collapse flags, features, verdict, fusion strategies and
the event log), all following the run's events live."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.lazy import Reveal
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Header, Static

from dfu_tui.runs.fitbeat import fit_state
from dfu_tui.runs.state import RunState
from dfu_tui.tui.format import breakable, duration, eta_text
from dfu_tui.tui.messages import (
    OpenFoldDetail,
    RunsUpdated,
)
from dfu_tui.tui.panels.base import MonitorView, Panel
from dfu_tui.tui.panels.distribution import DistributionPanel
from dfu_tui.tui.panels.events import EventsPanel
from dfu_tui.tui.panels.features import FeaturesPanel
from dfu_tui.tui.panels.folds import FoldsPanel
from dfu_tui.tui.panels.strategies import StrategiesPanel
from dfu_tui.tui.panels.task import TaskPanel
from dfu_tui.tui.panels.verdict import VerdictPanel
from dfu_tui.tui.screens.base import RunScreen
from dfu_tui.tui.widgets import Footer, update_text

# the panels, in the order they are laid out and mounted
PANELS: tuple[tuple[type[Panel], str], ...] = (
    (FoldsPanel, "folds-panel"),
    (TaskPanel, "task-panel"),
    (DistributionPanel, "dist-panel"),
    (FeaturesPanel, "features-panel"),
    (VerdictPanel, "verdict-panel"),
    (StrategiesPanel, "strategies-panel"),
    (EventsPanel, "log-panel"),
)
WIDE = 110  # columns from which the panels sit side by side (the screen's `-wide` class)


class MonitorScreen(RunScreen):
    """One run, live."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    BINDINGS = [
        # every key that acts on the run fits the footer at 80 columns; the fold and epoch
        # keys are named by the panels they move (and help)
        Binding("left_square_bracket", "fold(-1)", "Prev fold", key_display="[", show=False),
        Binding("right_square_bracket", "fold(1)", "Next fold", key_display="]", show=False),
        Binding("comma", "epoch(-1)", "Prev epoch", key_display=",", show=False),
        Binding("full_stop", "epoch(1)", "Next epoch", key_display=".", show=False),
        Binding("l", "latest", "Latest", show=False),
        Binding("d", "detail", "Detail"),
        Binding("f", "features", "Features", show=False),
        Binding("c", "run('compare')", "Compare"),
        Binding("s", "run('stop')", "Stop"),
        Binding("r", "run('resume')", "Resume"),
        Binding("e", "run('export')", "Export"),
        Binding("p", "run('report')", "Report"),
        Binding("M", "run('fit')", "Fit model", show=False),
    ]

    selected_fold: reactive[int | None] = reactive(None, init=False)  # None: follow the latest
    selected_epoch: reactive[int | None] = reactive(None, init=False)  # index into the epochs

    def compose(self) -> ComposeResult:
        # the breakpoint class the first resize would give, given before the first layout:
        # set then, it restyled and laid out every widget a second time (about 50 ms)
        self.add_class("-wide" if self.app.size.width >= WIDE else "-narrow")
        yield Header()
        yield Static(id="monitor-header")
        # the panels mount one by one after the first frame (Textual's Reveal), each drawn
        # as it mounts: opening the monitor never holds the UI thread for all of them
        with VerticalScroll(id="monitor-scroll"), Reveal(Grid(id="monitor-grid")):
            for kind, name in PANELS:
                yield kind(id=name)
        yield Footer(compact=True)

    @property
    def ready(self) -> bool:
        """Whether every panel is mounted (and so drawn once)."""
        return len(self.panels()) == len(PANELS)

    def panels(self) -> list[Panel]:
        """The panels mounted so far (one being mounted draws itself once it is)."""
        return [panel for panel in self.query(Panel) if panel.is_mounted]

    def on_mount(self) -> None:
        self.sub_title = self.run_id
        self.redraw()

    def on_runs_updated(self, message: RunsUpdated) -> None:
        if self.run_id not in message.changed:
            return  # nothing new: nothing redrawn
        self.redraw()

    def watch_selected_fold(self) -> None:
        self.redraw(at_once=True)  # the user's key: the plots follow it at once

    def watch_selected_epoch(self) -> None:
        self.redraw(at_once=True)

    # -- panels

    def view(self) -> MonitorView:
        """What the panels draw from now."""
        return MonitorView(
            self.run_id,
            self.state,
            self.context.catalog.documents(self.run_id),
            self.selected_fold,
            self.selected_epoch,
            self.context.clock,
        )

    def redraw(self, at_once: bool = False) -> None:
        """The header and every panel (each changes on screen only what changed); the plots
        once the numbers are on screen (one pending at a time), at once when the user asked
        (`at_once`), else at most every `PLOT_INTERVAL` while the run streams."""
        view = self.view()
        self.show_header(view.state)
        for panel in self.panels():
            panel.show(view)
        self.plots_later(at_once)

    #: A streaming run's plots are drawn again at most this often (seconds): a plot's new
    #: point redraws most of its cells, which an SSH link carries at every epoch otherwise;
    #: the numbers (header, folds, log) still change as each event comes.
    PLOT_INTERVAL = 1.0

    def plots_later(self, at_once: bool = True) -> None:
        """Draw the plots once what is drawn now is on screen (one such redraw pending at a
        time; a panel mounted meanwhile asks for it too); unless `at_once`, not sooner than
        `PLOT_INTERVAL` after the last drawing."""
        wait = 0.0 if at_once else self._plots_drawn + self.PLOT_INTERVAL - time.monotonic()
        if self._plots_pending:
            if wait > 0 or self._plots_timer is None:
                return  # the pending redraw comes soon enough
            self._plots_timer.stop()  # asked at once: no need to wait for the timer
        self._plots_pending = True
        self._plots_timer = None
        if wait > 0:
            self._plots_timer = self.set_timer(wait, self._plots_after_refresh)
        else:
            self.call_after_refresh(self.redraw_plots)

    _plots_pending = False
    _plots_drawn = -math.inf  # time.monotonic() of the last plot redraw
    _plots_timer: Timer | None = None
    _header = ""

    def _plots_after_refresh(self) -> None:
        self._plots_timer = None
        self.call_after_refresh(self.redraw_plots)

    def redraw_plots(self) -> None:
        """Each plot from the state as it is now (drawn again only when its figure changed)."""
        self._plots_pending = False
        self._plots_drawn = time.monotonic()
        view = self.view()
        for panel in self.panels():
            panel.show_plots(view)

    def show_header(self, state: RunState) -> None:
        now = self.context.clock()
        age = state.to_dict(now)["last_heartbeat_age_s"] if state.status == "running" else None
        status = state.effective_status(now)
        colour = {
            "failed": "$error",
            "stale": "$warning",
            "cancelled": "$warning",
            "completed": "$success",
        }.get(status, "$accent")
        text = (
            f"[b]{escape(self.run_id)}[/b]  [{colour}]{status}[/]"
            f"  elapsed {duration(state.elapsed(now))}"
            f"  ETA {eta_text(state, now)}  tasks {len(state.done)}/{len(state.tasks)}"
            f"  heartbeat {'-' if age is None else f'{age:.0f} s ago'}"
        )
        if state.skipped:
            text += f"  [$warning]{state.skipped} damaged log line(s) skipped[/]"
        if state.reason and status != "completed":
            text += f"\n{state.reason}"
        docs = self.context.catalog.documents(self.run_id)
        if docs.model is not None:
            text += f"\nfinal model: {escape(breakable(docs.model))} (dfu-tui predict applies it)"
        elif docs.fitting is not None:
            fit = {**docs.fitting, **fit_state(docs.fitting, self.context.clock())}
            text += (
                f"\nfinal model: fitting, {escape(fit['doing'])} ({fit['age_s']:.0f} s ago)"
                if fit["state"] == "fitting"
                else f"\nfinal model: fit stale, no sign of life for {fit['age_s']:.0f} s "
                "(M or dfu-tui fit resumes it)"
            )
        if text != self._header:
            update_text(self.query_one("#monitor-header", Static), text)
            self._header = text

    # -- actions

    def action_fold(self, step: int) -> None:
        """Show the previous / next fold (its distribution rather than an epoch's)."""
        folds = sorted(f["fold"] for f in self.state.fold_results)
        if not folds:
            self.selected_epoch = None
            return
        current = self.selected_fold if self.selected_fold is not None else folds[-1]
        index = max(0, min(len(folds) - 1, folds.index(current) + step if current in folds else 0))
        self._select(folds[index], None)

    def action_epoch(self, step: int) -> None:
        """Step through the epochs (inner-validation shares) of every image task so far."""
        epochs = self.state.epochs
        if not epochs:
            return
        current = self.selected_epoch if self.selected_epoch is not None else len(epochs)
        self.selected_epoch = max(0, min(len(epochs) - 1, current + step))

    def action_latest(self) -> None:
        self._select(None, None)

    def _select(self, fold: int | None, epoch: int | None) -> None:
        """Change both selections with one redraw (when anything changed)."""
        if (fold, epoch) != (self.selected_fold, self.selected_epoch):
            self.set_reactive(MonitorScreen.selected_fold, fold)
            self.set_reactive(MonitorScreen.selected_epoch, epoch)
            self.redraw(at_once=True)

    def action_detail(self) -> None:
        fold = self.view().shown_fold()
        if fold is not None:
            self.post_message(OpenFoldDetail(self.run_id, fold["fold"]))

    def action_features(self) -> None:
        """The run's resolved feature list (features.json) in a dialog."""
        from dfu_tui.tui.screens.modals import MessageScreen

        doc = self.context.catalog.documents(self.run_id).features
        if doc is None:
            path = self.context.catalog.run(self.run_id).features
            self.notify(f"{breakable(path)}: no feature list for this run", severity="warning")
            return
        self.app.push_screen(MessageScreen(f"Features of {self.run_id}", features_text(doc)))


def features_text(doc: dict[str, Any]) -> str:
    """features.json as plain text: the columns used, then each reason and its columns."""
    lines = [f"Used by the metadata branch ({len(doc['used'])}):"]
    lines += [f"  {c}" for c in doc["used"]]
    for reason, columns in doc["excluded"].items():
        lines.append(f"Left out, {reason} ({len(columns)}):")
        lines += [f"  {c}" for c in columns]
    if doc.get("compare"):
        drops = ", ".join(doc.get("compare_drops", []))
        lines.append(f"Compared without {doc['compare']}: {drops}")
    if doc.get("extra_columns"):
        lines.append(f"Not in the clinic's format: {', '.join(doc['extra_columns'])}")
    return "\n".join(lines)
