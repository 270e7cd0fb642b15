"""NumPy-only scoring of stored branch probabilities: weighted averages, kappa, and the
kappa-vs-fusion-weight curve. No scikit-learn or TensorFlow, so the dashboard can use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

N_CLASSES = 3


def weighted_average(probs: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean over the modalities each sample has (weights renormalised per sample).

    Rows where a sample has none of the modalities stay NaN.
    """
    n = len(next(iter(probs.values())))
    total = np.zeros((n, N_CLASSES))
    weight_sum = np.zeros((n, 1))
    for m, p in probs.items():
        has = ~np.isnan(p).any(axis=1, keepdims=True)
        w = weights.get(m, 0.0)
        total += np.where(has, p, 0.0) * w
        weight_sum += has * w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight_sum
    out[weight_sum[:, 0] == 0] = np.nan
    return out


def cohen_kappa(y: np.ndarray, pred: np.ndarray, quadratic: bool = False) -> float:
    """Cohen's kappa from the confusion matrix (unweighted, or quadratic weights)."""
    if len(y) == 0:
        return float("nan")
    confusion = np.zeros((N_CLASSES, N_CLASSES))
    np.add.at(confusion, (y, pred), 1)
    return kappa_of_confusion(confusion, quadratic)


def kappa_of_confusion(confusion: np.ndarray, quadratic: bool = False) -> float:
    """Cohen's kappa of a confusion matrix (rows: labels, columns: predictions); NaN when
    it is empty. Confusion matrices of disjoint rows add up, so this pools folds."""
    confusion = np.asarray(confusion, dtype=float)
    if confusion.sum() == 0:
        return float("nan")
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    idx = np.arange(N_CLASSES)
    if quadratic:
        weights = (idx[:, None] - idx[None, :]) ** 2 / (N_CLASSES - 1) ** 2
    else:
        weights = 1.0 - np.eye(N_CLASSES)
    denominator = (weights * expected).sum()
    if denominator == 0:
        return 0.0
    return float(1.0 - (weights * confusion).sum() / denominator)


def weight_curves(
    folds: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]],
    image_weights: Mapping[str, float],
    points: int = 101,
    anchor: str = "metadata",
) -> tuple[np.ndarray, np.ndarray]:
    """Validation kappa of each fold (rows) as the `anchor` weight goes from 0 to 1 (columns).

    `folds` holds, per fold, the branch probabilities of the validation rows and their labels;
    the rest of the weight is split over the other branches in the ratio of `image_weights`.
    """
    grid = np.linspace(0.0, 1.0, points)
    total = sum(image_weights.values()) or 1.0
    share = {m: w / total for m, w in image_weights.items()}
    curves = np.zeros((len(folds), points))
    for k, (probs, y) in enumerate(folds):
        for i, w in enumerate(grid):
            weights = {anchor: w, **{m: (1 - w) * s for m, s in share.items()}}
            fused = weighted_average(probs, weights)
            ok = ~np.isnan(fused).any(axis=1)
            curves[k, i] = cohen_kappa(y[ok], fused[ok].argmax(axis=1))
    return grid, curves
