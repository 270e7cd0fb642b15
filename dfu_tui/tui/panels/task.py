"""The current task: its latest epoch's loss and kappas, and the epoch curve."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.widgets import Static

from dfu_tui.runs.describe import usage_text
from dfu_tui.runs.figures import epoch_figure, epoch_task
from dfu_tui.tui.format import num
from dfu_tui.tui.panels.base import MonitorView, Panel
from dfu_tui.tui.plots import PlotPanel


class TaskPanel(Panel):
    def compose(self) -> ComposeResult:
        yield Static("[b]Current task[/b]", classes="panel-title")
        yield Static(id="task")
        yield PlotPanel(id="epoch-plot")

    def draw(self, view: MonitorView) -> None:
        state = view.state
        if not state.running:
            text = "no task running" if state.status == "running" else state.status
            last = next((t for t in reversed(state.started_tasks) if t in state.usage), None)
            if last is not None:  # what the last finished task used
                text += f"\n{last} used {usage_text(state.usage[last])}"
            self.set_text("#task", text)
            return
        task = sorted(state.running)[0]
        latest: dict[str, Any] = state.running[task]
        node = f" on {escape(state.nodes[task])}" if task in state.nodes else ""
        if not latest:
            self.set_text("#task", f"{task}{node}: starting")
            return
        self.set_text(
            "#task",
            f"fold {latest['fold']} {latest['branch']}{node}: "
            f"epoch {latest['epoch']}/{latest['max_epochs']}"
            f"  loss {num(latest.get('loss'))}\ntrain kappa {num(latest.get('train_kappa'))}"
            f"  early-stopping split kappa {num(latest.get('val_kappa'))}"
            + (f" (n={latest['val_n']})" if latest.get("val_n") else "")
            + (f"\nlast epoch: {used}" if (used := usage_text(latest)) else ""),
        )

    def draw_plots(self, view: MonitorView) -> None:
        task = epoch_task(view.state, view.epoch)
        self.query_one("#epoch-plot", PlotPanel).show(epoch_figure(view.state, task))
