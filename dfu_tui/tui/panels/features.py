"""The run's features: what the metadata branch used, the shown fold's leakage radar and
its flags, and the paired with/without comparison of a feature group."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from dfu_tui.tui.format import comparison_lines, flag_markup, radar_lines
from dfu_tui.tui.panels.base import MonitorView, Panel


class FeaturesPanel(Panel):
    def compose(self) -> ComposeResult:
        yield Static("[b]Features[/b]", classes="panel-title", id="features-title")
        yield Static(id="features")

    def draw(self, view: MonitorView) -> None:
        lines = []
        doc = view.docs.features
        if doc is not None:
            left = [k for k in doc["excluded"] if not k.startswith("label")]
            lines.append(
                f"{len(doc['used'])} metadata features"
                + (f"; left out: {', '.join(left)}" if left else "")
                + ("; with visit history" if doc.get("history") else "")
            )
        fold = view.shown_fold()
        if fold is None:
            self.set_text("#features-title", "[b]Features[/b]")
            lines.append("radar after the first fold")
        else:
            self.set_text("#features-title", f"[b]Features[/b]: leakage radar, fold {fold['fold']}")
            radar = fold.get("radar")
            lines.append(radar_lines(radar))
            lines += [flag_markup(f) for f in (radar["flags"] if radar else [])]
        summary = (view.docs.summary or {}).get("feature_comparison")
        compared = comparison_lines(view.state.fold_results, summary)
        if compared:
            lines.append(compared)
        self.set_text("#features", "\n".join(lines))
