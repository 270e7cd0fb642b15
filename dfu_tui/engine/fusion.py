"""Late fusion of branch probabilities: one estimator per strategy of `config.FUSIONS`.

Each strategy is an estimator in the manner of scikit-learn's stacking estimators: settings
in `__init__`, `fit(probas, y)` on branch probabilities of training rows, `predict_proba(probas)`,
and what it learned in attributes ending in `_`. Branch probabilities are (N, 3) arrays with
NaN rows where a sample lacks the modality. Only `fixed` uses no data; the others learn from
the training fold (`tuned` and `stacked` from its inner out-of-fold rows), never the reported
one.

Adding a strategy: its `FusionSpec` in `config.FUSIONS` (name, what it learns from, whether
weights shape it) and here a class registered under that name with `@estimator`, built by
`from_settings(weights, seed)`; what it learned beyond its weights goes in `learned(val)`
(a `FusionResult` field). The config, the launch form, `fuse`, the strategy tables and
`tests/unit/test_engine.py` all read the registry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dfu_tui.config import FUSIONS
from dfu_tui.data.schema import CLASSES, METADATA
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


class Fusion(Protocol):
    """A fusion strategy: fitted on training rows' branch probabilities, then applied."""

    def fit(self, probas: Probs, y: np.ndarray) -> Fusion: ...

    def predict_proba(self, probas: Probs) -> np.ndarray: ...

    def learned(self, val: Probs) -> dict[str, Any]:
        """What it learned beyond `weights_`, as `FusionResult` fields (none by default)."""
        ...

    def params(self) -> dict[str, Any]:
        """What it learned, as JSON; its class's `from_params` rebuilds it (a final model)."""
        ...


#: strategy name -> its estimator's factory `(weights, seed) -> Fusion`
ESTIMATORS: dict[str, Any] = {}
#: strategy name -> its estimator class (`from_params` rebuilds a saved one)
ESTIMATOR_CLASSES: dict[str, Any] = {}


def estimator(name: str) -> Any:
    """Register a fusion estimator class under the name of its `config.FUSIONS` spec."""

    def register(cls: Any) -> Any:
        assert name in FUSIONS, f"fusion {name!r} has no FusionSpec in config.FUSIONS"
        cls.strategy = name
        ESTIMATORS[name] = cls.from_settings
        ESTIMATOR_CLASSES[name] = cls
        return cls

    return register


class _Base:
    def learned(self, val: Probs) -> dict[str, Any]:
        return {}

    def params(self) -> dict[str, Any]:
        """What it learned, as JSON (a final model's `fusion.json`)."""
        return {"weights": dict(getattr(self, "weights_", {}))}


def _weights(params: Mapping[str, Any], branches: Sequence[str]) -> dict[str, float]:
    w = params.get("weights")
    if not isinstance(w, dict) or set(w) != set(branches):
        raise ValueError(f"weights must name exactly {', '.join(branches)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in w.values()):
        raise ValueError("weights must be numbers")
    if not all(math.isfinite(v) and v >= 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError("weights must be finite, non-negative and not all 0")
    return {k: float(v) for k, v in w.items()}


def _matrix(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if out.shape != shape or not np.isfinite(out).all():
        raise ValueError(f"{name} must be {shape} finite numbers")
    return out


@estimator("fixed")
class FixedFusion(_Base):
    """A weighted mean of the branches with the configured weights (renormalised per sample
    over the branches it has). Learns nothing."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)

    @classmethod
    def from_settings(cls, weights: Mapping[str, float], seed: int) -> Fusion:
        return cls(weights)

    def fit(self, probas: Probs, y: np.ndarray) -> FixedFusion:
        self.weights_ = dict(self.weights)
        return self

    def predict_proba(self, probas: Probs) -> np.ndarray:
        return weighted_average(probas, self.weights_)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], branches: Sequence[str]) -> FixedFusion:
        fusion = cls(_weights(params, branches))
        fusion.weights_ = dict(fusion.weights)
        return fusion


@estimator("geometric")
class GeometricFusion(FixedFusion):
    """A weighted geometric mean of the branches with the configured weights, renormalised
    per sample over the branches it has, then normalised to sum to 1: a branch that gives a
    class almost no probability vetoes it (the arithmetic mean only dilutes it). Learns
    nothing."""

    FLOOR = 1e-6  # a probability of 0 would veto for ever

    def predict_proba(self, probas: Probs) -> np.ndarray:
        logs = {m: np.log(np.clip(p, self.FLOOR, 1.0)) for m, p in probas.items()}
        mean_log = weighted_average(logs, self.weights_)  # NaN rows: no branch at all
        top = np.where(np.isnan(mean_log), -np.inf, mean_log).max(axis=1, keepdims=True)
        fused = np.exp(mean_log - top)  # a row without any branch stays NaN
        return np.asarray(fused / fused.sum(axis=1, keepdims=True))


@estimator("tuned")
class TunedFusion(_Base):
    """Fixed weights chosen by a grid search of kappa on the rows it is fitted on (the inner
    out-of-fold rows); the grid is 0.1 from `FINE_GRID_SAMPLES` rows, else 0.25. Ties go to
    the weights closest to the configured ones."""

    def __init__(self, prior: Mapping[str, float], step: float | None = None) -> None:
        self.prior = dict(prior)
        self.step = step

    @classmethod
    def from_settings(cls, weights: Mapping[str, float], seed: int) -> TunedFusion:
        return cls(weights)

    def learned(self, val: Probs) -> dict[str, Any]:
        return {"grid_step": self.grid_step_}

    def fit(self, probas: Probs, y: np.ndarray) -> TunedFusion:
        self.grid_step_ = self.step if self.step is not None else tuning_step(len(y))
        self.weights_ = tune_weights(probas, y, self.prior, self.grid_step_)
        return self

    def predict_proba(self, probas: Probs) -> np.ndarray:
        return weighted_average(probas, self.weights_)

    def params(self) -> dict[str, Any]:
        return {"weights": dict(self.weights_), "grid_step": self.grid_step_}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], branches: Sequence[str]) -> TunedFusion:
        weights = _weights(params, branches)
        fusion = cls(weights)
        fusion.weights_ = weights
        fusion.grid_step_ = float(_matrix(params.get("grid_step"), (), "grid_step"))
        return fusion


@estimator("learned_alpha")
class LearnedAlphaFusion(_Base):
    """The research code's V1: alpha = sigmoid(w . [p_meta, p_image] + b) per sample, and
    alpha * p_meta + (1 - alpha) * p_image, fitted by cross-entropy on the training fold's own
    branch predictions, as the research code did; an over-confident image branch there pulls
    alpha towards 0 (kept to reproduce that collapse). Without metadata: equal weights.

    Five parameters and a smooth loss: SciPy's L-BFGS-B with the analytic gradient fits them
    (a well-kept optimiser; a Keras model would load TensorFlow into every metadata+image
    fold for a 5-parameter fit)."""

    def __init__(self, seed: int = 0, max_iter: int = 500) -> None:
        self.seed = seed
        self.max_iter = max_iter

    @classmethod
    def from_settings(cls, weights: Mapping[str, float], seed: int) -> LearnedAlphaFusion:
        return cls(seed)

    def learned(self, val: Probs) -> dict[str, Any]:
        """The mean metadata weight on the validation rows (with metadata only)."""
        return {"mean_alpha": float(self.alpha(val).mean())} if METADATA in val else {}

    def fit(self, probas: Probs, y: np.ndarray) -> LearnedAlphaFusion:
        from scipy.optimize import minimize

        self.modalities_ = list(probas)
        if METADATA not in probas:
            self.weights_ = dict.fromkeys(probas, 1.0 / len(probas))
            return self
        meta, img = probas[METADATA], _image_mean(probas)
        x = np.hstack([meta, img])
        onehot = np.eye(3)[y]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:-1], theta[-1]
            alpha = 1 / (1 + np.exp(-(x @ w + b)))
            fused = np.clip(alpha[:, None] * meta + (1 - alpha[:, None]) * img, 1e-7, None)
            value = -float((onehot * np.log(fused)).sum()) / len(x)
            d_fused = -(onehot / fused) / len(x)
            d_alpha = (d_fused * (meta - img)).sum(axis=1) * alpha * (1 - alpha)
            return value, np.append(x.T @ d_alpha, d_alpha.sum())

        start = np.append(np.random.default_rng(self.seed).normal(0, 0.1, x.shape[1]), 0.0)
        fitted = minimize(
            loss, start, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter}
        )
        self.coef_, self.intercept_ = fitted.x[:-1], float(fitted.x[-1])
        return self

    def alpha(self, probas: Probs) -> np.ndarray:
        """The metadata weight of each row."""
        x = np.hstack([probas[METADATA], _image_mean(probas)])
        return np.asarray(1 / (1 + np.exp(-(x @ self.coef_ + self.intercept_))))

    def predict_proba(self, probas: Probs) -> np.ndarray:
        if METADATA not in probas:
            return weighted_average(probas, self.weights_)
        alpha = self.alpha(probas)[:, None]
        return np.asarray(alpha * probas[METADATA] + (1 - alpha) * _image_mean(probas))

    def params(self) -> dict[str, Any]:
        if not hasattr(self, "coef_"):
            return {"weights": dict(self.weights_)}
        return {"coef": self.coef_.tolist(), "intercept": self.intercept_}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], branches: Sequence[str]) -> LearnedAlphaFusion:
        fusion = cls()
        fusion.modalities_ = list(branches)
        if METADATA not in branches:
            fusion.weights_ = _weights(params, branches)
            return fusion
        fusion.coef_ = _matrix(params.get("coef"), (2 * len(CLASSES),), "coef")
        fusion.intercept_ = float(_matrix(params.get("intercept"), (), "intercept"))
        return fusion


@estimator("stacked")
class StackedFusion(_Base):
    """Multinomial logistic regression on the branch probabilities (a missing modality is
    a uniform row plus a missing indicator), fitted on the inner out-of-fold rows."""

    coef_: np.ndarray  # loaded from its parameters (`from_params`)
    intercept_: np.ndarray

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def from_settings(cls, weights: Mapping[str, float], seed: int) -> StackedFusion:
        return cls(seed)

    def fit(self, probas: Probs, y: np.ndarray) -> StackedFusion:
        from sklearn.linear_model import LogisticRegression

        self.modalities_ = list(probas)
        self.model_: Any = LogisticRegression(max_iter=1000, random_state=self.seed)
        self.model_.fit(_stack_features(probas), y)
        return self

    def predict_proba(self, probas: Probs) -> np.ndarray:
        if self.model_ is None:  # loaded from its parameters: the same softmax, in NumPy
            ordered = {m: probas[m] for m in self.modalities_}
            z = _stack_features(ordered) @ self.coef_.T + self.intercept_
            z = np.exp(z - z.max(axis=1, keepdims=True))
            return np.asarray(z / z.sum(axis=1, keepdims=True))
        return np.asarray(self.model_.predict_proba(_stack_features(probas)))

    def params(self) -> dict[str, Any]:
        if list(self.model_.classes_) != list(range(len(CLASSES))):
            raise ValueError("the training rows lacked a class: no stacked model to save")
        return {
            "branches": self.modalities_,
            "coef": self.model_.coef_.tolist(),
            "intercept": self.model_.intercept_.tolist(),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any], branches: Sequence[str]) -> StackedFusion:
        order = params.get("branches")
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(branches):
            raise ValueError(f"branches must be {', '.join(branches)}")
        fusion = cls()
        fusion.modalities_ = [str(m) for m in order]
        fusion.model_ = None
        features = (len(CLASSES) + 1) * len(order)  # each branch: its probabilities, missing
        fusion.coef_ = _matrix(params.get("coef"), (len(CLASSES), features), "coef")
        fusion.intercept_ = _matrix(params.get("intercept"), (len(CLASSES),), "intercept")
        return fusion


def fusion_from_params(strategy: str, params: Mapping[str, Any], branches: Sequence[str]) -> Any:
    """The fitted estimator a final model's `fusion.json` describes (ValueError, saying
    what is wrong, for parameters that do not fit the strategy and branches)."""
    if strategy not in ESTIMATORS:
        raise ValueError(f"unknown fusion strategy {strategy!r}")
    if not isinstance(params, Mapping):
        raise ValueError("params must be an object")
    return ESTIMATOR_CLASSES[strategy].from_params(params, list(branches))


def make_fusion(strategy: str, weights: Mapping[str, float], seed: int = 0) -> Fusion:
    """The estimator of a fusion strategy with the run's settings."""
    if strategy not in ESTIMATORS:
        raise ValueError(f"unknown fusion strategy {strategy!r}")
    return ESTIMATORS[strategy](weights, seed)


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
    """Fit `strategy` for the branches of `combo` on the training fold (its inner
    out-of-fold rows where the strategy needs them) and fuse validation and training rows."""
    val = {m: val[m] for m in combo}
    train = {m: train[m] for m in combo}
    if len(combo) == 1:
        return FusionResult(val[combo[0]], train[combo[0]], {combo[0]: 1.0})
    if FUSIONS[strategy].needs_oof:
        assert oof is not None, f"{strategy} fusion needs out-of-fold training probabilities"
        fit_on = {m: oof[m] for m in combo}
    else:
        fit_on = train
    model = make_fusion(strategy, weights, seed).fit(fit_on, y_train)
    return FusionResult(
        model.predict_proba(val),
        model.predict_proba(train),
        dict(getattr(model, "weights_", {})),
        **model.learned(val),
    )


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


def _image_mean(probs: Probs) -> np.ndarray:
    """The image branches' mean per row; the metadata branch where a row has no image."""
    images = {m: p for m, p in probs.items() if m != METADATA}
    out = weighted_average(images, dict.fromkeys(images, 1.0))
    missing = np.isnan(out).any(axis=1)
    out[missing] = probs[METADATA][missing]  # no image: the metadata branch alone
    return out


def _stack_features(probs: Probs) -> np.ndarray:
    cols = []
    for p in probs.values():
        missing = np.isnan(p).any(axis=1, keepdims=True)
        cols += [np.where(missing, 1 / 3, p), missing.astype(float)]
    return np.hstack(cols)
