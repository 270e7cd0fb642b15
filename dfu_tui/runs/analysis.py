"""Figures computed from a run's stored predictions (no retraining): the fusion-weight curve."""

from __future__ import annotations

import numpy as np

from dfu_tui.engine.curve import weight_curve
from dfu_tui.runs.rundir import RunDir, load_predictions


def fusion_curve(
    run: RunDir, folds: list[int], combo: list[str], weights: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean validation kappa over `folds` for metadata weights 0..1 (101 points); the image
    branches keep their configured ratio."""
    scored = []
    for fold in sorted(folds):
        preds = {b: load_predictions(run.prediction_file(fold, b)) for b in combo}
        labels = next(iter(preds.values()))["val_label"]
        scored.append(({b: p["val_proba"] for b, p in preds.items()}, labels))
    others = {m: w for m, w in weights.items() if m != "metadata"}
    return weight_curve(scored, others or dict.fromkeys(combo[1:], 1.0))
