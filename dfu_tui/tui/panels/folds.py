"""Per-fold kappa: the fused combination and each branch alone, fold by fold, with means."""

from __future__ import annotations

import statistics

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from dfu_tui.runs.figures import fold_kappa_figure
from dfu_tui.tui.format import num
from dfu_tui.tui.panels.base import MonitorView, Panel
from dfu_tui.tui.plots import PlotPanel


def mean_cells(rows: list[list[float | None]]) -> tuple[list[str], list[str]]:
    """The mean and the sample sd of each column (a row each: narrow columns, so every
    branch fits at 80); one value has no sd."""
    means, sds = [], []
    for i in range(len(rows[0])):
        vals = [float(v) for r in rows if (v := r[i]) is not None]
        means.append(f"{statistics.fmean(vals):.3f}" if vals else "-")
        sds.append(f"{statistics.stdev(vals):.3f}" if len(vals) > 1 else "-")
    return means, sds


class FoldsPanel(Panel):
    DEFAULT_CSS = "FoldsPanel #folds { height: auto; max-height: 12; }"

    def compose(self) -> ComposeResult:
        yield Static("[b]Per-fold kappa[/b] (validation folds)", classes="panel-title")
        yield DataTable(id="folds", cursor_type="row", show_cursor=False)
        yield PlotPanel(id="fold-plot")

    def draw(self, view: MonitorView) -> None:
        state = view.state
        if not state.combinations:
            return
        fused = "+".join(state.combinations[view.fused])
        branches = list(state.fold_results[0]["branches"]) if state.fold_results else []
        # short headers (named in the title) so the branches fit beside the fusion at 80
        columns = ["fold", "n", "κ", "QWK", *(f"{b} κ" for b in branches)]
        folds = sorted(state.fold_results, key=lambda f: f["fold"])
        values: dict[int, list[float | None]] = {}
        sizes: dict[int, int] = {}
        for f in folds:
            c = f["combinations"][view.fused]
            sizes[f["fold"]] = int(c.get("n") or 0)
            values[f["fold"]] = [
                c["kappa"],
                c["quadratic_kappa"],
                *(f["branches"][b]["kappa"] for b in branches),
            ]
        rows = []
        for k in range(1, state.folds + 1):
            shown = values.get(k)
            cells = [num(v) for v in shown] if shown else ["…" for _ in columns[2:]]
            rows.append([state.fold_name(k), str(sizes[k]) if k in sizes else "…", *cells])
        cv_folds = [f["fold"] for f in folds if f.get("fold_kind", "cv") == "cv"]
        cv = [values[k] for k in cv_folds]
        if cv:
            n_all = sum(sizes[k] for k in cv_folds)
            means, sds = mean_cells(cv)
            rows.append([f"mean ({len(cv)})", str(n_all), *means])
            rows.append(["sample sd", "", *sds])
        if state.repeats > 1:
            for r in range(1, state.repeats + 1):
                mine = [values[f["fold"]] for f in folds if f.get("repeat") == r]
                if mine:
                    n_r = sum(sizes[f["fold"]] for f in folds if f.get("repeat") == r)
                    rows.append([f"repeat {r} mean", str(n_r), *mean_cells(mine)[0]])
        self.set_rows("#folds", columns, rows)
        self.set_text(
            ".panel-title",
            f"[b]Per-fold kappa[/b]: {fused}, κ unweighted and QWK quadratic, on all its n "
            "validation samples (the verdict: the rows with every modality); a branch's "
            "column: it alone, κ"
            + (f", {state.repeats} repeats" if state.repeats > 1 else "")
            + ("; hold-out not in the mean" if state.strategy == "temporal" else ""),
        )

    def draw_plots(self, view: MonitorView) -> None:
        self.query_one("#fold-plot", PlotPanel).show(fold_kappa_figure(view.state))
