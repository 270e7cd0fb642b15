"""Compare: combinations ranked by mean kappa, and the kappa-vs-fusion-weight curve computed
from the stored branch probabilities (no retraining)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from dfu_tui.engine.curve import weight_curve
from dfu_tui.runs.rundir import load_predictions
from dfu_tui.runs.state import RunState

CHART_HEIGHT = 8
TICKS = " ▁▂▃▄▅▆▇█"


def ranked(state: RunState) -> list[dict[str, Any]]:
    """Combinations with mean / sd over finished folds, best mean kappa first."""
    rows: dict[str, dict[str, Any]] = {}
    for fold in state.fold_results:
        for c in fold["combinations"]:
            row = rows.setdefault(
                "+".join(c["modalities"]), {"modalities": c["modalities"], "folds": []}
            )
            row["folds"].append(c)
    out = []
    for name, row in rows.items():

        def stat(key: str, folds: list[dict[str, Any]] = row["folds"]) -> tuple[float, float]:
            vals = [f[key] for f in folds if f.get(key) is not None]
            if not vals:
                return float("nan"), float("nan")
            return statistics.fmean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0

        flags = sum(len(f["flags"]) for f in row["folds"])
        out.append(
            {
                "name": name,
                "modalities": row["modalities"],
                "kappa": stat("kappa"),
                "quadratic_kappa": stat("quadratic_kappa"),
                "accuracy": stat("accuracy")[0],
                "macro_f1": stat("macro_f1")[0],
                "flags": flags,
            }
        )
    return sorted(out, key=lambda r: -r["kappa"][0])


def fusion_curve(
    run_dir: Path, state: RunState, combo: list[str], weights: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean validation kappa over the finished folds for metadata weights 0..1 (101 points)."""
    folds = []
    for fold in sorted(f["fold"] for f in state.fold_results):
        preds = {
            b: load_predictions(run_dir / "predictions" / f"fold{fold}_{b}.npz") for b in combo
        }
        labels = next(iter(preds.values()))["val_label"]
        folds.append(({b: p["val_proba"] for b, p in preds.items()}, labels))
    others = {m: w for m, w in weights.items() if m != "metadata"}
    return weight_curve(folds, others or dict.fromkeys(combo[1:], 1.0))


def chart(grid: np.ndarray, values: np.ndarray, marked: float, width: int) -> str:
    """A small block chart of `values` over `grid`, with the configured weight marked."""
    width = max(20, min(len(grid), width))
    pick = np.linspace(0, len(grid) - 1, width).round().astype(int)
    ys = values[pick]
    lo, hi = float(np.nanmin(ys)), float(np.nanmax(ys))
    span = hi - lo or 1.0
    levels = ((ys - lo) / span * (CHART_HEIGHT * 8 - 1)).astype(int)
    rows = []
    for r in range(CHART_HEIGHT - 1, -1, -1):
        line = "".join(
            TICKS[min(8, max(0, lv - r * 8 + 1))] if lv >= r * 8 else " " for lv in levels
        )
        label = f"{hi:6.3f} " if r == CHART_HEIGHT - 1 else (f"{lo:6.3f} " if r == 0 else " " * 7)
        rows.append(label + "│" + line)
    mark = int(round(marked * (width - 1)))
    rows.append(" " * 7 + "└" + "─" * width)
    rows.append(" " * 8 + " " * mark + "▲" + f" configured {marked:.2f}")
    rows.append(" " * 8 + "0" + " " * (width - 2) + "1  metadata weight")
    return "\n".join(rows)


class CompareScreen(Screen[None]):
    """Ranked combinations and the fusion-weight curve of the selected one."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("[b]Combinations[/b], ranked by mean kappa over validation folds")
            yield DataTable(id="ranking", cursor_type="row")
            yield Static(id="curve-title")
            yield Static(id="curve-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.run_id} compare"
        state = self.app.catalog.state(self.run_id)  # type: ignore[attr-defined]
        table = self.query_one("#ranking", DataTable)
        table.add_columns(
            "combination",
            "kappa (unweighted) mean ± sd",
            "quadratic kappa",
            "accuracy",
            "macro F1",
            "flags",
        )
        for row in ranked(state):
            k, q = row["kappa"], row["quadratic_kappa"]
            table.add_row(
                row["name"],
                f"{k[0]:.3f} ± {k[1]:.3f}",
                f"{q[0]:.3f} ± {q[1]:.3f}",
                f"{row['accuracy']:.3f}",
                f"{row['macro_f1']:.3f}",
                str(row["flags"]),
                key=row["name"],
            )
        if not state.fold_results:
            self.query_one("#curve-title", Static).update("No fold has finished yet.")
            return
        table.focus()
        default = next(
            (
                r["name"]
                for r in ranked(state)
                if "metadata" in r["modalities"] and len(r["modalities"]) > 1
            ),
            None,
        )
        if default:
            self.show_curve(default)

    @on(DataTable.RowSelected, "#ranking")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.show_curve(str(event.row_key.value))

    def show_curve(self, name: str) -> None:
        combo = name.split("+")
        title = self.query_one("#curve-title", Static)
        chart_box = self.query_one("#curve-chart", Static)
        if "metadata" not in combo or len(combo) < 2:
            title.update(f"{name}: the fusion-weight curve needs metadata and an image branch")
            chart_box.update("")
            return
        state = self.app.catalog.state(self.run_id)  # type: ignore[attr-defined]
        cfg = self.app.config_for(self.run_id)  # type: ignore[attr-defined]
        weights = cfg.fusion_weights(tuple(combo)) if cfg is not None else {}
        try:
            grid, values = fusion_curve(self.app.catalog.path(self.run_id), state, combo, weights)  # type: ignore[attr-defined]
        except (OSError, KeyError, ValueError) as exc:
            title.update(f"{name}: no stored probabilities to draw the curve from ({exc})")
            chart_box.update("")
            return
        configured = weights.get("metadata", 0.7)
        best = int(np.nanargmax(values))
        at = values[int(round(configured * (len(grid) - 1)))]
        title.update(
            f"[b]Fusion-weight curve[/b] of {name}: mean kappa over {state.folds_done} validation "
            f"folds as the metadata weight goes 0 → 1 (images keep their ratio).\n"
            f"Measured on the validation folds: it describes the run, it must not select weights. "
            f"Configured {configured:.2f}: kappa {at:.3f}; "
            f"highest {values[best]:.3f} at {grid[best]:.2f}."
        )
        chart_box.update(chart(grid, values, configured, min(101, self.size.width - 30)))
