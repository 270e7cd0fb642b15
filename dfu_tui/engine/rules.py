"""Collapse and health rules (pure functions) and the seed note's verdict.

Each rule has a name and a level (warning or collapse); each firing is a Flag naming the
numbers that made it fire.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dfu_tui.config import CollapseConfig, CriteriaConfig
from dfu_tui.data.schema import CLASSES

WARNING, COLLAPSE = "warning", "collapse"


@dataclass(frozen=True)
class Flag:
    """One rule firing."""

    rule: str
    level: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _entropy(shares: np.ndarray) -> float:
    p = shares[shares > 0]
    return float(-(p * np.log(p)).sum())


def missing_class(true_share: np.ndarray, pred_share: np.ndarray) -> list[Flag]:
    """A class with support that is never predicted."""
    return [
        Flag("missing_class", COLLAPSE, f"{c} never predicted, true {true_share[i]:.2f}")
        for i, c in enumerate(CLASSES)
        if true_share[i] > 0 and pred_share[i] == 0
    ]


def dominant_class(
    true_share: np.ndarray, pred_share: np.ndarray, cfg: CollapseConfig
) -> list[Flag]:
    """A class predicted far more often than it occurs, or above an absolute cap."""
    flags = []
    for i, c in enumerate(CLASSES):
        p, t = pred_share[i], true_share[i]
        detail = f"{c} {p:.2f} of predictions, true {t:.2f}"
        if p > cfg.absolute_cap or p > t + 2 * cfg.share_margin:
            flags.append(Flag("dominant_class", COLLAPSE, detail))
        elif p > t + cfg.share_margin:
            flags.append(Flag("dominant_class", WARNING, detail))
    return flags


def low_entropy(true_share: np.ndarray, pred_share: np.ndarray, cfg: CollapseConfig) -> list[Flag]:
    """Predicted classes far less diverse than the true labels."""
    h_true, h_pred = _entropy(true_share), _entropy(pred_share)
    if h_true > 0 and h_pred < cfg.entropy_ratio * h_true:
        detail = f"predicted entropy {h_pred:.2f} < {cfg.entropy_ratio:.2f} x true {h_true:.2f}"
        return [Flag("low_entropy", COLLAPSE, detail)]
    return []


def chance_kappa(kappa: float, cfg: CollapseConfig) -> list[Flag]:
    """Kappa at chance level."""
    if not math.isnan(kappa) and kappa <= cfg.chance_kappa:
        return [Flag("chance_kappa", WARNING, f"kappa {kappa:.3f} <= {cfg.chance_kappa:.2f}")]
    return []


def overfit_gap(train_kappa: float, kappa: float, cfg: CollapseConfig) -> list[Flag]:
    """Training kappa far above validation kappa."""
    gap = train_kappa - kappa
    if not math.isnan(gap) and gap > cfg.max_gap:
        detail = f"train kappa {train_kappa:.2f} - validation {kappa:.2f} = {gap:.2f}"
        return [Flag("overfit_gap", WARNING, detail + f" > {cfg.max_gap:.2f}")]
    return []


def alpha_pinned(mean_alpha: float, cfg: CollapseConfig) -> list[Flag]:
    """A learned fusion weight stuck near 0 or 1."""
    if mean_alpha < cfg.alpha_pinned or mean_alpha > 1 - cfg.alpha_pinned:
        return [Flag("alpha_pinned", COLLAPSE, f"mean alpha {mean_alpha:.3f}")]
    return []


def nan_loss(loss: float) -> list[Flag]:
    """Training diverged."""
    if math.isnan(loss) or math.isinf(loss):
        return [Flag("nan_loss", COLLAPSE, f"loss {loss}")]
    return []


def check_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    cfg: CollapseConfig,
    kappa: float | None = None,
    train_kappa: float | None = None,
    mean_alpha: float | None = None,
) -> list[Flag]:
    """Every rule that applies to one set of predictions (an epoch or a fold)."""
    n = len(CLASSES)
    true_share = np.bincount(y_true, minlength=n) / max(1, len(y_true))
    pred_share = np.bincount(y_pred, minlength=n) / max(1, len(y_pred))
    flags = missing_class(true_share, pred_share)
    flags += dominant_class(true_share, pred_share, cfg)
    flags += low_entropy(true_share, pred_share, cfg)
    if kappa is not None:
        flags += chance_kappa(kappa, cfg)
        if train_kappa is not None:
            flags += overfit_gap(train_kappa, kappa, cfg)
    if mean_alpha is not None:
        flags += alpha_pinned(mean_alpha, cfg)
    return flags


def verdict(
    mean: dict[str, float],
    flags: list[dict[str, str]],
    cfg: CriteriaConfig,
    image_only: float | None,
    metadata_only: float | None,
) -> dict[str, Any]:
    """The seed note's success criteria for one combination, each with its numbers.

    `image_only` / `metadata_only` are the mean kappas of the best image branch alone and
    of the metadata branch alone (None when the combination has no such branch).
    """
    k, gap = mean["kappa"], mean["train_kappa"] - mean["kappa"]
    collapsed = [f for f in flags if f["level"] == COLLAPSE]
    criteria = [
        _criterion("minimum", f"kappa > {cfg.minimum_kappa:.2f}", k > cfg.minimum_kappa, k),
        _criterion("minimum", "no class collapse", not collapsed, len(collapsed)),
        _criterion("expected", f"kappa >= {cfg.expected_kappa:.2f}", k >= cfg.expected_kappa, k),
        _criterion("expected", f"train/validation gap < {cfg.max_gap:.2f}", gap < cfg.max_gap, gap),
        _criterion("ideal", f"kappa >= {cfg.ideal_kappa:.2f}", k >= cfg.ideal_kappa, k),
    ]
    if image_only is not None:
        criteria.insert(4, _criterion("expected", "beats image-only", k > image_only, image_only))
    if metadata_only is not None:
        criteria.append(
            _criterion("ideal", "beats metadata-only", k > metadata_only, metadata_only)
        )
    tiers: dict[str, Any] = {}
    passed = True
    for tier in ("minimum", "expected", "ideal"):
        passed = passed and all(c["ok"] for c in criteria if c["tier"] == tier)
        tiers[tier] = passed
    return {**tiers, "criteria": criteria}


def _criterion(tier: str, name: str, ok: bool, value: float) -> dict[str, Any]:
    number = value if isinstance(value, int) else round(float(value), 4)
    return {"tier": tier, "name": name, "ok": bool(ok), "value": number}


def criterion_value(criterion: dict[str, Any]) -> str:
    """A criterion's number as text: counts as integers, kappas with three decimals."""
    value = criterion["value"]
    return str(value) if isinstance(value, int) else f"{value:.3f}"
