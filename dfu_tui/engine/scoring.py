"""Scoring: each branch's predictions on a fold fused for every combination and strategy,
scored with both kappas, flagged by the collapse rules and paired with the run's reference on
common rows (`evaluate_fold`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dfu_tui.config import Config, FusionVariant
from dfu_tui.data.schema import (
    METADATA,
    is_metadata_branch,
)
from dfu_tui.engine.folds import HOLDOUT, Fold
from dfu_tui.engine.fusion import fuse
from dfu_tui.engine.metrics import both_kappas, fold_metrics
from dfu_tui.engine.plan import comparison_branch, needs_oof
from dfu_tui.engine.records import (
    CombinationResult,
    FeatureComparisonFold,
    FoldResult,
    FusedMetrics,
    FusionInfo,
    Kappas,
    Metrics,
    PairedScores,
    RadarFold,
    ReferenceScores,
    Scores,
    StrategyPaired,
    StrategyRow,
    scores_of,
)
from dfu_tui.engine.rules import check_predictions

# An epoch record of an image task (epoch, loss, kappas, shares, flags, ...).
EpochCallback = Callable[[dict[str, Any]], None]


def read_radar(pred: Mapping[str, np.ndarray], radar_cfg: Any) -> RadarFold | None:
    """The radar table and flags from a metadata predictions file (None when it has none)."""
    if "radar_features" not in pred:
        return None
    from dfu_tui.engine.radar import Importances, radar_flags, radar_table

    columns = [str(c) for c in pred["radar_features"]]
    imp = Importances(
        columns,
        pred["radar_importance"],
        pred["radar_importance_sd"],
        float(pred["radar_baseline_kappa"]),
    )
    single = dict(zip(columns, (float(v) for v in pred["radar_single_kappa"]), strict=True))
    rows = radar_table(imp, single)
    n_val, n_train = len(pred["val_index"]), len(pred["train_index"])
    return RadarFold(
        baseline_kappa=imp.baseline,
        n_validation=n_val,
        n_training=n_train,
        repeats=radar_cfg.repeats,
        features=rows,
        flags=[f.to_dict() for f in radar_flags(rows, radar_cfg, n_val, n_train)],
    )


def _metrics(labels: np.ndarray, fold: Fold, val: np.ndarray, train: np.ndarray) -> Scores:
    ok_v = ~np.isnan(val).any(axis=1)
    ok_t = ~np.isnan(train).any(axis=1)
    return fold_metrics(labels[fold.val][ok_v], val[ok_v], labels[fold.train][ok_t], train[ok_t])


#: On which training rows each branch's reported training kappa is measured.
TRAIN_ROWS = {
    "metadata": "patient-grouped inner out-of-fold predictions of the training fold",
    "image": "in-sample predictions of the training fold (its early-stopping split included)",
}


def train_rows(branches: Any) -> str:
    """What a branch's or combination's training kappa is measured on."""
    kinds = sorted({"metadata" if is_metadata_branch(b) else "image" for b in branches})
    return "; ".join(f"{k}: {TRAIN_ROWS[k]}" for k in kinds)


def training_probabilities(preds: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Each branch's training-fold probabilities: a metadata branch's patient-grouped inner
    out-of-fold ones when it has them (its out-of-bag ones share patients with the bag), an
    image branch's in-sample ones."""
    out = {}
    for b, p in preds.items():
        oof = p.get("oof_proba")
        grouped = (
            is_metadata_branch(b)
            and oof is not None
            and len(oof) == len(p["train_proba"])
            and not np.isnan(oof).all()
        )
        out[b] = oof if grouped else p["train_proba"]
    return out


def evaluate_fold(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    preds: Mapping[str, Mapping[str, np.ndarray]],
    groups: np.ndarray | None = None,
) -> FoldResult:
    """Fuse and score every combination and every branch alone on one fold, from each
    branch's predictions (the arrays of its `TaskResult`); each combination also against the
    run's common reference on their common rows. On the temporal hold-out, with the patients
    (`groups`), each combination's score gets a patient-bootstrap interval."""
    val = {b: p["val_proba"] for b, p in preds.items()}
    train = training_probabilities(preds)
    oof = {b: p["oof_proba"] for b, p in preds.items()} if needs_oof(cfg) else None
    result = FoldResult(
        fold=fold.number,
        repeat=fold.repeat,
        fold_kind=fold.kind,
        n_train=int(len(fold.train)),
        n_val=int(len(fold.val)),
        branches={},
        combinations=[],
    )
    for b in preds:
        scores = _metrics(labels, fold, val[b], train[b])
        flags = [f.to_dict() for f in _flags(cfg, labels, fold, val[b], scores)]
        result["branches"][b] = Metrics(**scores, flags=flags, train_rows=train_rows([b]))
    fused_val = []
    for combo in cfg.combinations:
        m, paired, rows, fused = _fused_metrics(cfg, labels, fold, combo, val, train, oof)
        fused_val.append(fused)
        c = CombinationResult(**m, modalities=list(combo), paired=paired)
        c["train_rows"] = train_rows(combo)
        if rows is not None:
            c["strategies"] = rows
        result["combinations"].append(c)
    if cfg.combinations:
        name, ref = reference_of(cfg, val, fused_val)
        for m, fused in zip(result["combinations"], fused_val, strict=True):
            m["reference"] = _reference_scores(labels, fold, name, ref, fused)
            if fold.kind == HOLDOUT and groups is not None:
                ok = ~np.isnan(fused).any(axis=1)
                m["interval"] = patient_bootstrap(
                    labels[fold.val][ok],
                    fused[ok].argmax(axis=1),
                    groups[fold.val][ok],
                    cfg.criteria.metric,
                    cfg.criteria.confidence,
                    cfg.cv.seed,
                )
    if METADATA in preds:
        radar = read_radar(preds[METADATA], cfg.radar)
        if radar is not None:
            result["radar"] = radar
    variant = comparison_branch(cfg)
    if variant is not None and variant in preds and METADATA in preds:
        result["feature_comparison"] = _compare_fold(
            cfg, labels, fold, variant, preds, val, train, oof
        )
    return result


def reference_of(
    cfg: Config, val: Mapping[str, np.ndarray], fused: list[np.ndarray]
) -> tuple[str, np.ndarray]:
    """The common reference every combination is ranked against: metadata alone when the run
    has the metadata branch, else the first combination."""
    if METADATA in val:
        return METADATA, val[METADATA]
    return "+".join(cfg.combinations[0]), fused[0]


def _reference_scores(
    labels: np.ndarray, fold: Fold, name: str, ref: np.ndarray, fused: np.ndarray
) -> ReferenceScores:
    common = ~np.isnan(fused).any(axis=1) & ~np.isnan(ref).any(axis=1)
    y = labels[fold.val][common]
    return ReferenceScores(
        name=name,
        n=int(common.sum()),
        fused=both_kappas(y, fused[common].argmax(axis=1)),
        reference=both_kappas(y, ref[common].argmax(axis=1)),
    )


BOOTSTRAP_RESAMPLES = 1000


def patient_bootstrap(
    y: np.ndarray,
    pred: np.ndarray,
    groups: np.ndarray,
    metric: str,
    confidence: float,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> list[float] | None:
    """A percentile interval of the kappa (`metric`) from resampling patients with
    replacement (a patient's visits stay together); None with fewer than 2 patients."""
    from dfu_tui.engine.curve import cohen_kappa

    patients, inverse = np.unique(groups, return_inverse=True)
    if len(patients) < 2:
        return None
    rows = [np.flatnonzero(inverse == i) for i in range(len(patients))]
    rng = np.random.default_rng(seed)
    quadratic = metric == "quadratic_kappa"
    values = np.empty(resamples)
    for r in range(resamples):
        take = np.concatenate([rows[i] for i in rng.integers(0, len(patients), len(patients))])
        values[r] = cohen_kappa(y[take], pred[take], quadratic=quadratic)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def fold_flags(result: FoldResult) -> list[dict[str, Any]]:
    """The fold-level flags of a fold result, each with the combination it concerns."""
    out = [
        {"combination": c["modalities"], **flag}
        for c in result["combinations"]
        for flag in c["flags"]
    ]
    out += [{"combination": [METADATA], **f} for f in result.get("radar", {}).get("flags", [])]
    out += [  # the other fusions of the comparison: their own flags, named
        {"combination": c["modalities"], "strategy": row["name"], **flag}
        for c in result["combinations"]
        for row in c.get("strategies", [])[1:]
        for flag in row["flags"]
    ]
    return out


def _fused_metrics(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    combo: tuple[str, ...],
    val: dict[str, np.ndarray],
    train: dict[str, np.ndarray],
    oof: dict[str, np.ndarray] | None,
    compare: bool = True,
) -> tuple[FusedMetrics, PairedScores, list[StrategyRow] | None, np.ndarray]:
    """Fuse one combination on one fold with the configured strategy and score it, with its
    flags and its branches on the same rows; with `compare`, every other fusion of
    `fusion.compare` too, on the same rows. Returns the metrics, the paired scores, the
    comparison's rows (None without one) and the fused validation probabilities."""
    variants = cfg.fusion_variants()
    m, fused = _fuse_variant(cfg, labels, fold, combo, val, train, oof, variants[0])
    paired = _paired_scores(labels, fold, combo, val, fused)
    rows = None
    if compare and len(variants) > 1 and len(combo) > 1:
        rows = []
        for variant in variants:
            if variant is variants[0]:
                row, other = m, fused
            else:
                row, other = _fuse_variant(cfg, labels, fold, combo, val, train, oof, variant)
            rows.append(_strategy_row(labels, fold, variant, row, other, fused))
    return m, paired, rows, fused


def _fuse_variant(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    combo: tuple[str, ...],
    val: dict[str, np.ndarray],
    train: dict[str, np.ndarray],
    oof: dict[str, np.ndarray] | None,
    variant: FusionVariant,
) -> tuple[FusedMetrics, np.ndarray]:
    """One fusion of one combination on one fold: its metrics and flags, and its fused
    validation probabilities."""
    weights = cfg.variant_weights(variant, combo)
    fused = fuse(variant.strategy, combo, weights, val, train, labels[fold.train], oof, cfg.cv.seed)
    scores = _metrics(labels, fold, fused.val, fused.train)
    info = FusionInfo(strategy=variant.strategy, weights=fused.weights)
    if variant.name != variant.strategy:
        info["name"] = variant.name
    if fused.grid_step is not None:
        info["grid_step"] = fused.grid_step
    flags = _flags(cfg, labels, fold, fused.val, scores, fused.mean_alpha)
    m = FusedMetrics(**scores, flags=[f.to_dict() for f in flags], fusion=info)
    if fused.mean_alpha is not None:
        m["mean_alpha"] = fused.mean_alpha
    return m, fused.val


def _strategy_row(
    labels: np.ndarray,
    fold: Fold,
    variant: FusionVariant,
    m: FusedMetrics,
    fused: np.ndarray,
    reference: np.ndarray,
) -> StrategyRow:
    """One fusion's scores on a fold, and it and the reference fusion on their common rows."""
    common = ~np.isnan(fused).any(axis=1) & ~np.isnan(reference).any(axis=1)
    y = labels[fold.val][common]
    row = StrategyRow(
        **scores_of(m),
        name=variant.name,
        strategy=variant.strategy,
        weights=m["fusion"]["weights"],
        flags=m["flags"],
        paired=StrategyPaired(
            n=int(common.sum()),
            strategy=both_kappas(y, fused[common].argmax(axis=1)),
            reference=both_kappas(y, reference[common].argmax(axis=1)),
        ),
    )
    if "mean_alpha" in m:
        row["mean_alpha"] = m["mean_alpha"]
    return row


def _paired_scores(
    labels: np.ndarray,
    fold: Fold,
    combo: tuple[str, ...],
    val: dict[str, np.ndarray],
    fused: np.ndarray,
) -> PairedScores:
    """The combination and each branch (its own, and metadata alone when the run has it)
    scored on the same rows: the validation samples with every modality of the combination."""
    common = ~np.isnan(fused).any(axis=1)
    for b in combo:
        common &= ~np.isnan(val[b]).any(axis=1)
    y = labels[fold.val][common]
    names = [*combo, *([METADATA] if METADATA in val and METADATA not in combo else [])]
    return PairedScores(
        n=int(common.sum()),
        fused=both_kappas(y, fused[common].argmax(axis=1)),
        branches={b: both_kappas(y, val[b][common].argmax(axis=1)) for b in names},
    )


def _compare_fold(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    variant: str,
    preds: Mapping[str, Mapping[str, np.ndarray]],
    val: dict[str, np.ndarray],
    train: dict[str, np.ndarray],
    oof: dict[str, np.ndarray] | None,
) -> FeatureComparisonFold:
    """Each combination with metadata (and metadata alone) scored with and without the group,
    on the same validation samples of this fold. Each side's forest predictions are averaged
    over `radar.forest_seeds` differently seeded forests when the tasks stored them (one
    forest each measures forest noise beside the columns)."""

    def averaged(branch: str) -> np.ndarray:
        return preds[branch].get("seeds_val_proba", val[branch])

    seeds = cfg.radar.forest_seeds if "seeds_val_proba" in preds[variant] else 1
    sides = {
        "with": {**val, METADATA: averaged(METADATA)},
        "without": {**val, METADATA: averaged(variant)},
    }
    swapped = {
        "with": (train, oof),
        "without": (
            {**train, METADATA: train[variant]},
            None if oof is None else {**oof, METADATA: oof[variant]},
        ),
    }
    y = labels[fold.val]
    rows = [
        {
            "modalities": [METADATA],
            "with": both_kappas(y, sides["with"][METADATA].argmax(axis=1)),
            "without": both_kappas(y, sides["without"][METADATA].argmax(axis=1)),
        }
    ]
    for combo in cfg.combinations:
        if METADATA not in combo or len(combo) == 1:
            continue
        row: dict[str, Any] = {"modalities": list(combo)}
        for side in ("with", "without"):
            tr, of = swapped[side]
            m, _, _, _ = _fused_metrics(cfg, labels, fold, combo, sides[side], tr, of, False)
            row[side] = Kappas(kappa=m["kappa"], quadratic_kappa=m["quadratic_kappa"])
        rows.append(row)
    return FeatureComparisonFold(
        group=cfg.features.compare, n=int(len(fold.val)), forest_seeds=seeds, rows=rows
    )


def _flags(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    proba: np.ndarray,
    m: Scores,
    mean_alpha: float | None = None,
) -> list[Any]:
    ok = ~np.isnan(proba).any(axis=1)
    return check_predictions(
        labels[fold.val][ok],
        proba[ok].argmax(axis=1),
        cfg.collapse,
        kappa=m["kappa"],
        train_kappa=m["train_kappa"],
        mean_alpha=mean_alpha,
    )
