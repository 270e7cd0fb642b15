"""The prediction distribution of the shown fold (or epoch) against the true one, with the
collapse flags in force."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Static

from dfu_tui.runs.events import Event
from dfu_tui.runs.figures import epoch_task, share_figure
from dfu_tui.runs.state import RunState
from dfu_tui.tui.format import distribution, flag_markup
from dfu_tui.tui.panels.base import MonitorView, Panel
from dfu_tui.tui.plots import PlotPanel


def epoch_flags(state: RunState, e: Event) -> tuple[list[dict[str, Any]], list[str]]:
    """The flags in force at epoch `e` of its task (raised at or before it, rule still
    holding), and the rules holding at `e` that have not held long enough to be raised."""
    holding = e.get("rules_holding")
    if holding is None:  # a run from before persistence: its flags as they came
        return list(e.get("flags", [])), []
    raised = [
        f
        for f in state.flags
        if f.get("scope") == "epoch" and f.get("task") == e["task"] and f["epoch"] <= e["epoch"]
    ]
    collapsing = (e.get("collapse_streak") or 0) > 0
    in_force = [
        f for f in raised if f["rule"] in holding or (f["level"] == "collapse" and collapsing)
    ]
    latest = {f["rule"]: f for f in in_force}  # one line per rule, the latest raising
    waiting = sorted({r for r in holding if r not in latest})
    return list(latest.values()), waiting


class DistributionPanel(Panel):
    def compose(self) -> ComposeResult:
        yield Static("[b]Prediction distribution[/b]", classes="panel-title", id="dist-title")
        yield Static(id="distribution")
        yield Static(id="flags")
        yield PlotPanel(id="share-plot")

    def draw(self, view: MonitorView) -> None:
        state = view.state
        fold = view.shown_fold() if view.epoch is None else None
        extra = ""
        flags: list[dict[str, Any]]
        if fold is not None:
            c = fold["combinations"][view.fused]
            follow = " (latest)" if view.fold is None else ""
            title = (
                f"[b]Prediction distribution[/b]: fold {fold['fold']}{follow}, "
                f"{'+'.join(c['modalities'])}, validation  [dim]\\[ ] other folds, l latest[/]"
            )
            body = distribution(c["predicted_share"], c["true_share"])
            flags = c["flags"]
        elif state.epochs:
            index = len(state.epochs) - 1 if view.epoch is None else view.epoch
            e = state.epochs[min(index, len(state.epochs) - 1)]
            title = (
                f"[b]Prediction distribution[/b]: {e['task']} epoch {e['epoch']}/"
                f"{e['max_epochs']}, inner validation  [dim], . other epochs, l latest[/]"
            )
            body = distribution(e.get("val_predicted_share") or {}, e.get("val_true_share") or {})
            flags, holding = epoch_flags(state, e)
            if holding:
                extra = (
                    "[dim]seen this epoch, flagged only if it lasts (a CNN's first epochs "
                    "often predict one class): " + ", ".join(holding) + "[/]"
                )
        else:
            title = "[b]Prediction distribution[/b]"
            body = "waiting for the first epoch or fold"
            flags = []
        ordered = sorted(flags, key=lambda f: f["level"] != "collapse")
        lines = [flag_markup(f) for f in ordered] or ["[$success]no flags[/]"]
        self.set_text("#dist-title", title)
        self.set_text("#distribution", body)
        self.set_text("#flags", "\n".join([*lines, *([extra] if extra else [])]))

    def draw_plots(self, view: MonitorView) -> None:
        task = epoch_task(view.state, view.epoch)
        self.query_one("#share-plot", PlotPanel).show(share_figure(view.state, task))
