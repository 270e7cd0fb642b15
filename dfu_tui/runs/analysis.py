"""Figures computed from a run's stored predictions (no retraining): the fusion-weight curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfu_tui.engine.curve import weight_curves
from dfu_tui.runs.rundir import RunDir, load_predictions


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
