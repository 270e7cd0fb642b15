"""Fold detail: confusion matrix, per-class F1, per-branch metrics and flags of one fold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from dfu_tui.runs.figures import confusion_heatmap, f1_figure, fused_index
from dfu_tui.tui.format import CLASSES, flag_markup, num, radar_lines
from dfu_tui.tui.messages import Context
from dfu_tui.tui.plots import PlotPanel, fill_heatmap
from dfu_tui.tui.screens.base import RunScreen
from dfu_tui.tui.widgets import Footer

METRICS = ("kappa", "quadratic_kappa", "accuracy", "macro_f1", "train_kappa")


class FoldDetailScreen(RunScreen):
    """One fold of one run."""

    def __init__(self, context: Context, run_id: str, fold: int) -> None:
        super().__init__(context, run_id)
        self.fold = fold

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="detail-title")
            yield Static(
                "[b]Confusion matrix[/b] (rows: true, columns: predicted; "
                "count and share of the row, shaded by the share)",
                id="confusion-title",
            )
            yield DataTable(id="confusion", show_cursor=False)
            yield Static("[b]Per-class F1[/b]")
            yield PlotPanel(id="f1-plot")
            yield DataTable(id="f1", show_cursor=False)
            yield Static(id="calibration")
            yield Static(
                "[b]Combinations and branches alone[/b] (kappa unweighted; quadratic kappa)"
            )
            yield DataTable(id="metrics", show_cursor=False)
            yield Static(
                "[b]Top features[/b] (permutation importance: kappa drop when shuffled, "
                "validation fold | single-feature kappa, training fold)"
            )
            yield Static(id="detail-features")
            yield Static("[b]Flags[/b]")
            yield Static(id="detail-flags")
        yield Footer()

    def on_mount(self) -> None:
        state = self.state
        fold = next(f for f in state.fold_results if f["fold"] == self.fold)
        index = fused_index([c["modalities"] for c in fold["combinations"]])
        fused = fold["combinations"][index]
        name = "+".join(fused["modalities"])
        label = state.fold_name(self.fold)
        self.sub_title = f"{self.run_id} {label}"
        paired = fused.get("paired")
        same_rows = (
            f"; on the {paired['n']} with every modality: unweighted kappa "
            f"{num(paired['fused']['kappa'])}, quadratic {num(paired['fused']['quadratic_kappa'])}"
            if paired
            else ""
        )
        self.query_one("#detail-title", Static).update(
            f"[b]{label.capitalize()}[/b] of {escape(self.run_id)}: {name}, "
            f"{fused['n']} validation samples{same_rows}"
        )
        heatmap = confusion_heatmap(fold, index)
        fill_heatmap(self.query_one("#confusion", DataTable), heatmap, self.app.theme_variables)
        self.query_one("#confusion-title", Static).update(
            f"[b]Confusion matrix[/b] of {escape(name)} (rows: true, columns: predicted; "
            "count and share of the row, shaded by the share)"
        )
        self.query_one("#f1-plot", PlotPanel).show(f1_figure(fold, index))
        f1 = self.query_one("#f1", DataTable)
        f1.add_columns(
            "class", "F1", "sensitivity", "specificity", "ROC AUC", "predicted", "true share"
        )
        for c in CLASSES:
            f1.add_row(
                c,
                num(fused["f1"][c]),
                num((fused.get("sensitivity") or {}).get(c)),
                num((fused.get("specificity") or {}).get(c)),
                num((fused.get("roc_auc") or {}).get(c)),
                num(fused["predicted_share"][c], 2),
                num(fused["true_share"][c], 2),
            )
        self.query_one("#calibration", Static).update(calibration_text(fused))
        metrics = self.query_one("#metrics", DataTable)
        metrics.add_columns("", "n", *METRICS)
        rows: list[tuple[str, Mapping[str, Any]]]
        rows = [("+".join(c["modalities"]), c) for c in fold["combinations"]]
        rows += [(f"{b} alone", m) for b, m in fold["branches"].items()]
        for label, m in rows:
            metrics.add_row(label, str(m.get("n", "-")), *(num(m.get(k)) for k in METRICS))
        radar = fold.get("radar")
        self.query_one("#detail-features", Static).update(radar_lines(radar, top=10))
        flags = [(label, f) for label, m in rows for f in m["flags"]]
        flags += [("metadata features", f) for f in (radar["flags"] if radar else [])]
        self.query_one("#detail-flags", Static).update(
            "\n".join(f"{label}: {flag_markup(f)}" for label, f in flags) or "[$success]none[/]"
        )


def calibration_text(m: Mapping[str, Any]) -> str:
    """The Brier score and the reliability table of one set of predictions (markup), or
    why there is none (a run logged before they were)."""
    if m.get("brier") is None:
        return "[$text-muted]no calibration in this run's log (logged before it was)[/]"
    lines = [
        f"[b]Calibration[/b] (n={m.get('n', '?')}): Brier score {num(m['brier'])} "
        "(0 perfect, 2 worst; a uniform guess 0.667). Reliability, by the predicted "
        "class's probability:"
    ]
    for low, high, n, confidence, accuracy in m.get("reliability") or []:
        gap = accuracy - confidence
        lines.append(
            f"  {low:.1f}-{high:.1f}: n={int(n):<4} mean probability {confidence:.2f}, "
            f"correct {accuracy:.2f} ({'over' if gap < 0 else 'under'}-confident by "
            f"{abs(gap):.2f})"
        )
    return "\n".join(lines)
