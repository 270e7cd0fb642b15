"""Compare: combinations ranked by their paired difference from a common reference, with
their verdicts and caveats, and the kappa-vs-fusion-weight curve computed from the stored
branch probabilities (no retraining)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from dfu_tui.engine.rules import SCALE_NAMES, caveat_texts, tier_word
from dfu_tui.runs.analysis import CurveView, curve_view, needs_curve_problem
from dfu_tui.runs.figures import cv_folds
from dfu_tui.runs.state import RunState
from dfu_tui.runs.strategies import paired_cell
from dfu_tui.tui.plots import PlotPanel
from dfu_tui.tui.screens.base import RunScreen
from dfu_tui.tui.widgets import Footer


def ranked(state: RunState, cfg: Any = None) -> list[dict[str, Any]]:
    """Combinations over the finished cross-validation folds: mean and sample sd of both
    kappas on all samples, and the paired difference from the run's common reference
    (metadata alone, or the first combination without it) on their common rows, on the
    criteria's scale, with each verdict.

    Ranked by that paired difference; a log from before common references ranks by the
    paired difference from metadata alone, and one without any paired scores is left in
    its configured order (never ranked on different rows). The top row of a search is
    labelled as selected from N.
    """
    from dfu_tui.engine.judge import judge_combination
    from dfu_tui.engine.paired import mean_sd, test_train_ratio

    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    if not folds:
        return []
    ratio = test_train_ratio(folds)
    out = []
    for i, first in enumerate(folds[0]["combinations"]):
        per: list[dict[str, Any]] = [
            {"fold": f["fold"], "repeat": f.get("repeat", 1), **f["combinations"][i]} for f in folds
        ]
        judged = judge_combination(cfg, first["modalities"], per, ratio, folds) if cfg else None
        versus = judged["reference"] if judged else None
        paired = judged["paired"] if judged else None
        if versus is None and paired:  # a log from before common references
            versus = paired.get("versus", {}).get("metadata")
            if versus is not None:
                versus = {**versus, "reference": "metadata", "n": paired["n"]}
        out.append(
            {
                "name": "+".join(first["modalities"]),
                "modalities": first["modalities"],
                "kappa": mean_sd([f["kappa"] for f in per]),
                "quadratic_kappa": mean_sd([f["quadratic_kappa"] for f in per]),
                "accuracy": mean_sd([f["accuracy"] for f in per])[0],
                "macro_f1": mean_sd([f["macro_f1"] for f in per])[0],
                "flags": sum(len(f["flags"]) for f in per),
                "n": sum(int(f.get("n") or 0) for f in per),
                "paired_n": sum(versus["n"]) if versus else 0,
                "folds": len(per),
                "versus_reference": versus,
                "verdict": judged["verdict"] if judged else None,
            }
        )

    def key(r: dict[str, Any]) -> float:
        v = r["versus_reference"]
        if v is None:
            return 0.0 if r["modalities"] == ["metadata"] else -math.inf
        value = v["mean_difference"]
        return -math.inf if value is None or math.isnan(value) else float(value)

    if not any(r["versus_reference"] for r in out):
        return out  # nothing paired: the configured order, not a ranking
    return sorted(out, key=lambda r: -key(r))


def versus_text(v: dict[str, Any] | None, modalities: list[str]) -> str:
    """`+0.036 [-0.08,+0.15] ≈` (≈: not distinguishable; beats; worse), or `reference`
    for the reference itself."""
    if v is None:
        return "reference" if modalities == ["metadata"] else "-"
    if modalities == [v.get("reference")] or "+".join(modalities) == v.get("reference"):
        return "reference"
    return paired_cell(v)


def tiers_text(v: Mapping[str, Any] | None) -> str:
    """The verdict's tiers in a cell: `min✔ exp✘ ideal n/a` (a word and a mark: no colour
    needed); the design and caveats are said under the table."""
    if not v:
        return "-"
    marks = {"yes": "✔", "no": "✘"}
    short = {"minimum": "min", "expected": "exp", "ideal": "ideal"}
    return " ".join(
        f"{short[t]}{marks[w]}" if (w := tier_word(v, t)) in marks else f"{short[t]} {w}"
        for t in ("minimum", "expected", "ideal")
    )


def caveats_text(rows: list[dict[str, Any]]) -> str:
    """The caveats of each ranked combination's verdict, under the ranking."""
    where: dict[str, list[str]] = {}  # one line per caveat, naming what it applies to
    for row in rows:
        for text in caveat_texts(row["verdict"]) if row.get("verdict") else []:
            where.setdefault(text, []).append(row["name"])
    lines = [
        f"[b]{'every combination' if len(names) == len(rows) > 1 else escape(', '.join(names))}"
        f"[/b]: {escape(text)}"
        for text, names in where.items()
    ]
    return "Caveats:\n" + "\n".join(lines) if lines else "Caveats: none"


def plus_minus(pair: tuple[float, float]) -> str:
    mean, sd = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


class CompareScreen(RunScreen):
    """Ranked combinations and the fusion-weight curve of the selected one (computed on a
    worker thread from the stored predictions)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="ranking-title")
            yield DataTable(id="ranking", cursor_type="row")
            yield Static(id="caveats")
            yield Static(id="strategies-title")
            yield DataTable(id="strategies", cursor_type="row", show_cursor=False)
            yield Static(id="curve-title")
            yield PlotPanel(id="curve-plot")
        yield Footer()

    #: Whether the ranking is shown (it is computed on a worker thread: each verdict is a
    #: paired test per combination, tens of milliseconds for a search of many).
    ready = False

    def on_mount(self) -> None:
        self.sub_title = f"{self.run_id} compare"
        self.query_one("#curve-plot", PlotPanel).display = False  # until a curve is computed
        self.query_one("#strategies-title", Static).display = False  # until a row is chosen
        self.query_one("#strategies", DataTable).display = False
        self.query_one("#ranking-title", Static).update("Ranking the combinations…")
        cfg = self.context.catalog.documents(self.run_id).config
        self._rank(self.state, cfg)

    @work(thread=True, exclusive=True, group="ranking", exit_on_error=False)
    def _rank(self, state: RunState, cfg: Any) -> None:
        try:
            rows = ranked(state, cfg)
        except Exception as exc:  # a damaged log or summary: say so, keep the dashboard
            problem = f"cannot rank the combinations: {type(exc).__name__}: {exc}"
            self.app.call_from_thread(self._show_problem, problem)
            return
        self.app.call_from_thread(self._show_ranking, state, cfg, rows)

    def _show_problem(self, text: str) -> None:
        if self.is_attached:
            self.ready = True
            self.query_one("#ranking-title", Static).update(escape(text))

    def _show_ranking(self, state: RunState, cfg: Any, rows: list[dict[str, Any]]) -> None:
        if not self.is_attached:
            return  # left before its ranking was ready
        self.ready = True
        scale = SCALE_NAMES[cfg.criteria.metric] if cfg is not None else "kappa"
        folds = rows[0]["folds"] if rows else 0
        paired = [r["versus_reference"] for r in rows if r["versus_reference"]]
        reference = paired[0].get("reference", "metadata") if paired else None
        order = (
            f"ranked by the paired difference from {reference} on common rows ({scale}, "
            f"{cfg.criteria.confidence if cfg else 0.95:.0%} corrected CI)"
            if paired
            else "not ranked: this run has no paired scores (configured order)"
        )
        self.query_one("#ranking-title", Static).update(
            f"[b]Combinations[/b] over {folds} validation folds: mean ± sample sd on all "
            f"samples; {order}."
            + (
                f"\nThe top row is selected from {len(rows)}: its mean is optimistic."
                if len(rows) > 1
                else ""
            )
        )
        table = self.query_one("#ranking", DataTable)
        metric = cfg.criteria.metric if cfg is not None else "kappa"
        other = "kappa" if metric == "quadratic_kappa" else "quadratic_kappa"
        short = {"quadratic_kappa": "QWK", "kappa": "κ"}
        # what decides first (fits 80 columns): the paired difference, the verdict, the
        # mean on the criteria's scale and its n; the rest further right
        table.add_columns(
            "combination",
            f"vs {reference or 'reference'} [CI]",
            "verdict",
            f"{short[metric]} mean ± sd",
            "n",
            f"{short[other]} mean ± sd",
            "macro F1",
            "flags",
            "common-row n",
        )
        table.fixed_columns = 1
        for i, row in enumerate(rows):
            name = row["name"] + (f" (best of {len(rows)})" if i == 0 and len(rows) > 1 else "")
            table.add_row(
                name,
                versus_text(row["versus_reference"], row["modalities"]),
                tiers_text(row["verdict"]),
                plus_minus(row[metric]),
                str(row["n"]),
                plus_minus(row[other]),
                f"{row['macro_f1']:.3f}",
                str(row["flags"]),
                str(row["paired_n"]) if row["versus_reference"] else "-",
                key=row["name"],
            )
        self.query_one("#caveats", Static).update(caveats_text(rows))
        if not state.fold_results:
            self.query_one("#curve-title", Static).update("No fold has finished yet.")
            return
        table.focus()
        # the top-ranked fusion with metadata; unranked (no paired scores): the largest one
        fusions = [r for r in rows if "metadata" in r["modalities"] and len(r["modalities"]) > 1]
        if not paired:
            fusions.sort(key=lambda r: -len(r["modalities"]))
        if fusions:
            self.show_curve(fusions[0]["name"])

    @on(DataTable.RowSelected, "#ranking")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.show_curve(str(event.row_key.value))

    @on(DataTable.RowHighlighted, "#ranking")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_strategies(str(event.row_key.value))

    def show_strategies(self, name: str) -> None:
        """The fusion strategies of the highlighted combination, side by side (hidden for a
        run that compares none, or a combination with nothing to fuse)."""
        from dfu_tui.runs.strategies import cells, columns, strategies_of, title

        docs = self.context.catalog.documents(self.run_id)
        found, so_far = strategies_of(docs.config, self.state, docs.summary, name.split("+"))
        heading = self.query_one("#strategies-title", Static)
        table = self.query_one("#strategies", DataTable)
        table.display = found is not None
        table.clear(columns=True)
        if found is None:
            compared = docs.config is not None and len(docs.config.fusion_variants()) > 1
            heading.update(f"{escape(name)}: one modality, nothing to fuse" if compared else "")
            heading.display = compared
            return
        heading.display = True
        heading.update("[b]" + escape(title(name, found, so_far)) + "[/b]")
        table.add_columns(*columns(found))
        for r in found["rows"]:
            table.add_row(*(escape(c) for c in cells(r, found["metric"])))

    def show_curve(self, name: str) -> None:
        """Draw the fusion-weight curve of one combination (computed off the UI thread)."""
        title = self.query_one("#curve-title", Static)
        plot = self.query_one("#curve-plot", PlotPanel)
        problem = needs_curve_problem(name.split("+"))
        if problem:
            title.update(f"{name}: {problem}")
            plot.display = False
            return
        folds = len(cv_folds(self.state))
        title.update(f"{name}: computing the fusion-weight curve over {folds} folds…")
        self._compute_curve(name)

    @work(thread=True, exclusive=True, group="curve", exit_on_error=False)
    def _compute_curve(self, name: str) -> None:
        run = self.context.catalog.run(self.run_id)
        cfg = self.context.catalog.documents(self.run_id).config
        view = curve_view(run, self.state, cfg, name.split("+"))
        self.app.call_from_thread(self._draw_curve, view)

    def _draw_curve(self, view: CurveView) -> None:
        title = self.query_one("#curve-title", Static)
        plot = self.query_one("#curve-plot", PlotPanel)
        if view.curve is None or view.figure is None:
            title.update(f"{view.name}: {view.problem}")
            plot.display = False
            return
        plot.display = True
        curve, n = view.curve, view.folds
        best = curve.best
        spread = "±1 sample sd over folds as the dotted band; " if n > 1 else ""
        if view.configured is None:
            configured = "Configured weight unknown (the run's config could not be read); "
        else:
            at = curve.at(view.configured)
            configured = f"Configured {view.configured:.2f}: kappa {curve.mean[at]:.3f}; "
        title.update(
            f"[b]Fusion-weight curve[/b] of {view.name}: mean kappa (unweighted) over {n} "
            "validation folds as the metadata weight goes 0 → 1 (images keep their ratio); "
            f"{spread}flat lines: each branch alone.\n"
            f"Measured on the validation folds: it describes the run, it must not select weights. "
            f"{configured}highest {curve.mean[best]:.3f} at {curve.grid[best]:.2f}."
        )
        figure = view.figure
        plot.show(figure)
