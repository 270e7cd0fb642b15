"""Every fusion of `fusion.compare` for the fused combination, side by side; hidden for a
run that compares none."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from dfu_tui.tui.panels.base import MonitorView, Panel


class StrategiesPanel(Panel):
    DEFAULT_CSS = """
    StrategiesPanel.panel { column-span: 2; padding: 0; }
    StrategiesPanel #strategies { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static("[b]Fusion strategies[/b]", classes="panel-title")
        yield Static(id="strategies-title")
        yield DataTable(id="strategies", cursor_type="row", show_cursor=False)

    def draw(self, view: MonitorView) -> None:
        from dfu_tui.runs.strategies import cells, columns, strategies_of, title

        cfg, state = view.docs.config, view.state
        self.display = (
            cfg is not None and len(cfg.fusion_variants()) > 1 and bool(state.combinations)
        )
        if cfg is None or not self.display:
            return
        combo = state.combinations[view.fused]
        found, so_far = strategies_of(cfg, state, view.docs.summary, combo)
        if found is None:
            names = ", ".join(v.name for v in cfg.fusion_variants())
            self.set_text("#strategies-title", f"after the first fold: {names}")
            return
        self.set_text("#strategies-title", escape(title("+".join(combo), found, so_far)))
        rows = [[escape(c) for c in cells(r, found["metric"])] for r in found["rows"]]
        self.set_rows("#strategies", columns(found), rows)
