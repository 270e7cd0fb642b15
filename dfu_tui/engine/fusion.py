"""Late fusion of branch probabilities: fixed, learned_alpha, tuned, stacked.

Branch probabilities are (N, 3) arrays with NaN rows where a sample lacks the modality.
Only `fixed` uses no data; the others learn from the training fold, never the reported one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dfu_tui.data.schema import METADATA
from dfu_tui.engine.curve import weighted_average
from dfu_tui.engine.metrics import kappa

Probs = Mapping[str, np.ndarray]


@dataclass
class FusionResult:
    """Fused probabilities of the validation and training rows, and what the fusion learned."""

    val: np.ndarray
    train: np.ndarray
    weights: dict[str, float] = field(default_factory=dict)
    mean_alpha: float | None = None
    grid_step: float | None = None  # tuned: the weight grid searched


#: `tuned` searches weights in steps of 0.1 only with this many inner out-of-fold samples;
#: below it, steps of 0.25: a finer grid on few samples fits their noise (the kappa of 100
#: samples moves by about 0.1 between neighbouring weights), and the chosen weight would not
#: carry over to the reported fold.
FINE_GRID_SAMPLES = 300


def tuning_step(n_samples: int) -> float:
    """The weight grid `tuned` fusion searches for `n_samples` inner out-of-fold samples."""
    return 0.1 if n_samples >= FINE_GRID_SAMPLES else 0.25


def fuse(
    strategy: str,
    combo: Sequence[str],
    weights: Mapping[str, float],
    val: Probs,
    train: Probs,
    y_train: np.ndarray,
    oof: Probs | None = None,
    seed: int = 0,
) -> FusionResult:
    """Fuse the branches of `combo` with `strategy`."""
    val = {m: val[m] for m in combo}
    train = {m: train[m] for m in combo}
    if len(combo) == 1:
        return FusionResult(val[combo[0]], train[combo[0]], {combo[0]: 1.0})
    if strategy == "fixed":
        return FusionResult(
            weighted_average(val, weights), weighted_average(train, weights), dict(weights)
        )
    if strategy == "learned_alpha":
        return _learned_alpha(combo, val, train, y_train, seed)
    assert oof is not None, f"{strategy} fusion needs out-of-fold training probabilities"
    oof = {m: oof[m] for m in combo}
    if strategy == "tuned":
        step = tuning_step(len(y_train))
        best = tune_weights(oof, y_train, weights, step)
        return FusionResult(
            weighted_average(val, best), weighted_average(train, best), best, grid_step=step
        )
    if strategy == "stacked":
        return _stacked(val, train, oof, y_train, seed)
    raise ValueError(f"unknown fusion strategy {strategy!r}")


def tune_weights(
    oof: Probs, y: np.ndarray, prior: Mapping[str, float], step: float = 0.1
) -> dict[str, float]:
    """Grid search of fixed weights on inner out-of-fold probabilities, by kappa.

    Ties go to the weights closest to the configured ones.
    """
    names = list(oof)
    steps = round(1 / step)
    best: tuple[float, float] = (-np.inf, 0.0)
    chosen = dict(prior)
    for combo in itertools.product(range(steps + 1), repeat=len(names) - 1):
        if sum(combo) > steps:
            continue
        w = {m: c / steps for m, c in zip(names, combo, strict=False)}
        w[names[-1]] = (steps - sum(combo)) / steps
        fused = weighted_average(oof, w)
        ok = ~np.isnan(fused).any(axis=1)
        score = kappa(y[ok], fused[ok].argmax(axis=1))
        closeness = -sum(abs(w[m] - prior.get(m, 0.0)) for m in names)
        if (score, closeness) > best:
            best, chosen = (score, closeness), w
    return chosen


def _image_mean(probs: Probs, combo: Sequence[str]) -> np.ndarray:
    images = {m: probs[m] for m in combo if m != METADATA}
    out = weighted_average(images, dict.fromkeys(images, 1.0))
    missing = np.isnan(out).any(axis=1)
    out[missing] = probs[METADATA][missing]  # no image: the metadata branch alone
    return out


def _learned_alpha(
    combo: Sequence[str], val: Probs, train: Probs, y_train: np.ndarray, seed: int
) -> FusionResult:
    """The research code's V1: alpha = sigmoid(Dense(1)) on [p_meta, p_image], per sample.

    Trained on the training fold's own branch predictions, as the research code did; an
    over-confident image branch there pulls alpha towards 0 (kept to reproduce that collapse).
    Combinations without metadata fall back to equal weights.
    """
    if METADATA not in combo:
        equal = dict.fromkeys(combo, 1.0 / len(combo))
        return FusionResult(weighted_average(val, equal), weighted_average(train, equal), equal)
    meta_t, img_t = train[METADATA], _image_mean(train, combo)
    meta_v, img_v = val[METADATA], _image_mean(val, combo)
    x = np.hstack([meta_t, img_t])
    rng = np.random.default_rng(seed)
    w: np.ndarray = np.asarray(rng.normal(0, 0.1, x.shape[1]))
    b = 0.0
    onehot = np.eye(3)[y_train]
    m1 = np.zeros(x.shape[1] + 1)
    m2 = np.zeros(x.shape[1] + 1)
    for step in range(1, 501):  # Adam on the cross-entropy of the fused output
        alpha = 1 / (1 + np.exp(-(x @ w + b)))
        fused = alpha[:, None] * meta_t + (1 - alpha[:, None]) * img_t
        d_fused = -(onehot / np.clip(fused, 1e-7, None)) / len(x)
        d_alpha = (d_fused * (meta_t - img_t)).sum(axis=1) * alpha * (1 - alpha)
        grad = np.append(x.T @ d_alpha, d_alpha.sum())
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad**2
        update = 0.05 * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-8)
        w = w - update[:-1]
        b = float(b - update[-1])

    def apply(meta: np.ndarray, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = 1 / (1 + np.exp(-(np.hstack([meta, img]) @ w + b)))
        return alpha[:, None] * meta + (1 - alpha[:, None]) * img, alpha

    fused_v, alpha_v = apply(meta_v, img_v)
    fused_t, _ = apply(meta_t, img_t)
    return FusionResult(fused_v, fused_t, {}, float(alpha_v.mean()))


def _stack_features(probs: Probs) -> np.ndarray:
    cols = []
    for p in probs.values():
        missing = np.isnan(p).any(axis=1, keepdims=True)
        cols += [np.where(missing, 1 / 3, p), missing.astype(float)]
    return np.hstack(cols)


def _stacked(val: Probs, train: Probs, oof: Probs, y_train: np.ndarray, seed: int) -> FusionResult:
    """Multinomial logistic regression on the inner out-of-fold probabilities."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000, random_state=seed)
    model.fit(_stack_features(oof), y_train)
    return FusionResult(
        model.predict_proba(_stack_features(val)), model.predict_proba(_stack_features(train))
    )
