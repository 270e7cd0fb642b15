"""Figures computed from a run's stored predictions (no retraining): the fusion-weight curve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfu_tui.data.schema import METADATA
from dfu_tui.engine.curve import weight_curves
from dfu_tui.runs.figures import Figure, branch_means, curve_figure, cv_folds
from dfu_tui.runs.rundir import RunDir, load_predictions
from dfu_tui.runs.state import RunState


@dataclass(frozen=True)
class FusionCurve:
    """Validation kappa (unweighted) against the metadata weight: one row per fold."""

    grid: np.ndarray  # metadata weights 0..1
    per_fold: np.ndarray  # folds x points

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.per_fold.mean(axis=0))

    @property
    def sd(self) -> np.ndarray:
        """Sample sd over folds (NaN with one fold: no spread to show)."""
        if len(self.per_fold) < 2:
            return np.full(len(self.grid), np.nan)
        return np.asarray(self.per_fold.std(axis=0, ddof=1))

    @property
    def best(self) -> int:
        """Index of the highest mean kappa."""
        return int(np.nanargmax(self.mean))

    def at(self, weight: float) -> int:
        """Index of the grid point nearest `weight`."""
        return int(np.abs(self.grid - weight).argmin())


def fusion_curve(
    run: RunDir, folds: list[int], combo: list[str], weights: dict[str, float]
) -> FusionCurve:
    """Validation kappa of each of `folds` for metadata weights 0..1 (101 points); the image
    branches keep their configured ratio."""
    scored = []
    for fold in sorted(folds):
        preds = {b: load_predictions(run.prediction_file(fold, b)) for b in combo}
        labels = next(iter(preds.values()))["val_label"]
        scored.append(({b: p["val_proba"] for b, p in preds.items()}, labels))
    others = {m: w for m, w in weights.items() if m != "metadata"}
    grid, curves = weight_curves(scored, others or dict.fromkeys(combo[1:], 1.0))
    return FusionCurve(grid, curves)


@dataclass(frozen=True)
class CurveView:
    """The fusion-weight curve of one combination ready to draw (the report and the compare
    screen both use it), or the problem that left none."""

    name: str
    folds: int
    curve: FusionCurve | None = None
    configured: float | None = None  # the configured metadata weight; None: config unread
    figure: Figure | None = None
    problem: str = ""


def needs_curve_problem(combo: Sequence[str]) -> str:
    """Why a combination has no fusion-weight curve ("" when it has one)."""
    if METADATA not in combo or len(combo) < 2:
        return "the fusion-weight curve needs metadata and an image branch"
    return ""


def curve_view(run: RunDir, state: RunState, cfg: Any, combo: Sequence[str]) -> CurveView:
    """The fusion-weight curve of `combo` over the run's finished cross-validation folds,
    from its stored predictions (`cfg`: the run's config, None when it could not be read)."""
    name = "+".join(combo)
    problem = needs_curve_problem(combo)
    if problem:
        return CurveView(name, 0, problem=problem)
    folds = [f["fold"] for f in cv_folds(state)]
    weights = cfg.fusion_weights(tuple(combo)) if cfg is not None else {}
    try:
        curve = fusion_curve(run, folds, list(combo), weights)
    except (OSError, KeyError, ValueError) as exc:
        return CurveView(
            name,
            len(folds),
            problem=f"no stored probabilities to draw the fusion-weight curve from ({exc})",
        )
    configured = weights.get(METADATA)
    figure = curve_figure(
        name,
        curve.grid.tolist(),
        curve.mean.tolist(),
        curve.sd.tolist(),
        configured,
        branch_means(state, list(combo)),
        len(folds),
    )
    return CurveView(name, len(folds), curve, configured, figure)
