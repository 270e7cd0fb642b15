"""An experiment: folds -> (fold, branch) tasks -> predictions -> fusion -> metrics.

Each (fold, branch) is trained once and reused by every combination that contains it. Every
function here returns its result and reports progress through a callback; `dfu_tui.runs`
turns results into files and events.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfu_tui.config import EXTRA_BACKBONES, FUSIONS, Config, FusionVariant
from dfu_tui.data.dataset import Dataset
from dfu_tui.data.schema import (
    FEATURE_GROUPS,
    METADATA,
    is_metadata_branch,
)
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import CV, HOLDOUT, Fold
from dfu_tui.engine.fusion import fuse
from dfu_tui.engine.metrics import both_kappas, fold_metrics
from dfu_tui.engine.plan import branches_of, comparison_branch
from dfu_tui.engine.records import (
    CASEMIX,
    CombinationResult,
    CombinationSummary,
    FeatureComparisonFold,
    FoldResult,
    FusedMetrics,
    FusionInfo,
    Kappas,
    Metrics,
    PairedScores,
    RadarFold,
    ReferenceScores,
    RunCV,
    Scores,
    StrategyPaired,
    StrategyRow,
    Summary,
    Verdict,
    combination_of,
    scores_of,
)
from dfu_tui.engine.rules import check_predictions
from dfu_tui.errors import InputError

# An epoch record of an image task (epoch, loss, kappas, shares, flags, ...).
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TaskResult:
    """What a (fold, branch) task returns: its predictions, in the fold's sample order, and
    the radar arrays of the metadata branch."""

    fold: int
    branch: str
    val_index: np.ndarray
    val_label: np.ndarray
    val_proba: np.ndarray
    train_index: np.ndarray
    train_proba: np.ndarray
    oof_proba: np.ndarray
    seconds: float
    best_epoch: int | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array, by its field name, then the extra arrays."""
        fields = (f.name for f in dataclasses.fields(self))
        named = {k: v for k in fields if isinstance(v := getattr(self, k), np.ndarray)}
        return named | self.extra


def needs_oof(cfg: Config) -> bool:
    """Whether a fusion the run scores is fitted on inner out-of-fold probabilities (then
    every branch task computes them)."""
    return any(FUSIONS[v.strategy].needs_oof for v in cfg.fusion_variants())


def branch_features(cfg: Config, dataset: Dataset, branch: str) -> list[str]:
    """The metadata columns a metadata branch uses (the comparison branch drops its group)."""
    columns = dataset.table.feature_columns
    if branch == METADATA:
        return list(columns)
    dropped = set(FEATURE_GROUPS[cfg.features.compare])
    return [c for c in columns if c not in dropped]


def run_folds(cfg: Config, table: Any) -> list[Fold]:
    """The run's outer folds: repeated grouped K-fold, then the temporal hold-out if asked."""
    from dfu_tui.engine.folds import make_cv, temporal_holdout

    holdout = None
    if cfg.cv.strategy == "temporal":
        column = cfg.cv.order_column
        if not column or column == cfg.data.patient_column:
            order = table.patients.astype(float)
        elif column in table.frame.columns:
            order = np.asarray(pd_numeric(table.frame[column]), dtype=float)
            if np.isnan(order).all():
                raise InputError(f"cv.order_column: column '{column}' has no numeric values")
        else:
            raise InputError(f"cv.order_column: no column '{column}' in the metadata file")
        holdout = temporal_holdout(order, table.patients, cfg.cv.holdout_fraction)
    return make_cv(table.labels, table.patients, cfg.cv.folds, cfg.cv.seed, cfg.cv.repeats, holdout)


def pd_numeric(values: Any) -> Any:
    """A column as numbers (text that is not a number becomes NaN)."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce")


def image_trainer(cfg: Config, threads: int) -> Callable[..., BranchOutput]:
    """The function that trains an image branch: Keras, or one registered in
    `config.EXTRA_BACKBONES` (the tests' stand-in). TensorFlow's threads are
    `image_model.threads` (the same whatever `--jobs` says, so the model is too); with 0,
    the task's share of the cores (`threads`), as before."""
    registered = EXTRA_BACKBONES.get(cfg.image_model.backbone)
    if registered is not None:
        module, _, name = registered.partition(":")
        return getattr(importlib.import_module(module), name)
    from dfu_tui.engine.image_branch import configure_tensorflow, train_image_branch

    im = cfg.image_model
    configure_tensorflow(
        im.threads or threads, im.mixed_precision, im.deterministic, fixed=im.threads > 0
    )
    return train_image_branch


def train_task(
    cfg: Config,
    dataset: Dataset,
    fold: Fold,
    branch: str,
    threads: int = 0,
    on_epoch: EpochCallback | None = None,
) -> TaskResult:
    """Train one branch on one fold and return its predictions.

    `threads` caps the CPU threads of this task where they do not change its result (the
    forest's `n_jobs`; TensorFlow's come from `image_model.threads`; 0: all cores);
    `on_epoch` receives each epoch record of an image branch as it ends.
    """
    threads = threads or (os.cpu_count() or 1)
    table = dataset.table
    inner = cfg.cv.inner_folds if needs_oof(cfg) else 0
    seed = cfg.cv.seed * 1000 + fold.number
    start = time.perf_counter()
    extra: dict[str, np.ndarray] = {}
    if is_metadata_branch(branch):
        from dfu_tui.engine.metadata_branch import train_metadata_branch

        frame = table.frame[branch_features(cfg, dataset, branch)]
        model_cfg = cfg.metadata_model
        if model_cfg.n_jobs == -1:
            model_cfg = dataclasses.replace(model_cfg, n_jobs=threads)
        # Always inner out-of-fold: the forest's reported training kappa is patient-grouped
        # (out-of-bag rows share patients with the bag).
        out: BranchOutput = train_metadata_branch(
            frame,
            table.labels,
            table.patients,
            fold.train,
            fold.val,
            model_cfg,
            seed,
            cfg.cv.inner_folds,
        )
        if branch == METADATA and cfg.radar.enabled:
            extra = fold_radar(cfg, frame, table.labels, table.patients, fold, out, seed)
        if cfg.features.compare and branch in (METADATA, comparison_branch(cfg)):
            from dfu_tui.engine.metadata_branch import seed_averaged_proba

            extra["seeds_val_proba"] = seed_averaged_proba(
                frame,
                table.labels,
                fold.train,
                fold.val,
                model_cfg,
                seed,
                cfg.radar.forest_seeds,
                out.val_proba,
            )
    else:
        crops = dataset.crops[branch]
        out = image_trainer(cfg, threads)(
            branch,
            crops.crops,
            crops.sample_index,
            table.labels,
            table.patients,
            fold.train,
            fold.val,
            cfg.image_model,
            cfg.collapse,
            seed,
            inner,
            on_epoch or (lambda record: None),
        )
    return TaskResult(
        fold=fold.number,
        branch=branch,
        val_index=fold.val,
        val_label=table.labels[fold.val],
        val_proba=out.val_proba,
        train_index=fold.train,
        train_proba=out.train_proba,
        oof_proba=out.oof_proba if out.oof_proba is not None else np.zeros((0, 3)),
        seconds=round(time.perf_counter() - start, 3),
        best_epoch=out.info.get("best_epoch"),
        extra=extra,
    )


def fold_radar(
    cfg: Config,
    frame: Any,
    labels: np.ndarray,
    groups: np.ndarray,
    fold: Fold,
    out: BranchOutput,
    seed: int,
) -> dict[str, np.ndarray]:
    """The leakage radar of one fold, as arrays for the metadata branch's predictions file.

    Permutation importance of the fitted pipeline on the validation fold; single-feature
    kappa by patient-grouped CV inside the training fold.
    """
    from dfu_tui.engine.radar import (
        output_groups,
        permutation_importances,
        plain_predict,
        single_feature_kappas,
    )

    model = out.info["model"]
    columns_step, forest = model.named_steps["columns"], model.named_steps["forest"]
    numeric = [c for c in frame.columns if c in columns_step.transformers_[0][2]]
    text = [c for c in frame.columns if c in columns_step.transformers_[1][2]]
    mapping = output_groups(columns_step, numeric, text)
    names = list(frame.columns)
    matrix = np.asarray(columns_step.transform(frame.iloc[fold.val]), dtype=float)

    forest.n_jobs = 1  # one large predict; the worker's other threads are other tasks'

    def predict(rows: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():  # the forest saw the transformer's named columns
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            proba = forest.predict_proba(rows)
        return np.asarray(forest.classes_)[proba.argmax(axis=1)]

    imp = permutation_importances(
        plain_predict(predict),
        matrix,
        labels[fold.val],
        cfg.radar.repeats,
        seed,
        names,
        [mapping[c] for c in names],
    )
    single = single_feature_kappas(
        frame.iloc[fold.train], labels[fold.train], groups[fold.train], cfg.cv.inner_folds, seed
    )
    return {
        "radar_features": np.array(imp.columns, dtype=str),
        "radar_importance": imp.mean,
        "radar_importance_sd": imp.std,
        "radar_single_kappa": np.array([single[c] for c in imp.columns]),
        "radar_baseline_kappa": np.array(imp.baseline),
    }


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


def summarize(cfg: Config, run_id: str, folds: list[FoldResult], status: str) -> Summary:
    """The summary.json document: per combination and per branch, the cross-validation folds
    with mean, sample sd, per-repeat means, paired scores and verdict; the temporal hold-out
    apart; the radar and feature comparison."""
    from dfu_tui.engine.judge import judge_combination
    from dfu_tui.engine.paired import (
        fold_means,
        summarize_comparison,
        summarize_radar,
        summarize_strategies,
        test_train_ratio,
    )

    cv: list[Any] = [f for f in folds if f.get("fold_kind", CV) == CV]
    ratio = test_train_ratio(cv)
    branches = []
    for b in branches_of(cfg):
        per = [{"fold": f["fold"], "repeat": f.get("repeat", 1), **f["branches"][b]} for f in cv]
        mean, std = fold_means(per)
        branches.append({"branch": b, "folds": per, "mean": mean, "std": std})
    combos: list[CombinationSummary] = []
    for i, combo in enumerate(cfg.combinations):
        per = [combination_of(f, i) for f in cv]
        entry = CombinationSummary(
            **judge_combination(cfg, list(combo), per, ratio, cv),
            modalities=list(combo),
            fusion={"strategy": cfg.fusion.strategy, "weights": cfg.fusion_weights(combo)},
            folds=per,
        )
        strategies = summarize_strategies(
            per, cfg.criteria.metric, ratio, cfg.criteria.confidence, cv
        )
        if strategies is not None:
            entry["strategies"] = strategies
        combos.append(entry)
    doc = Summary(
        run_id=run_id,
        status=status,
        metric=cfg.criteria.metric,
        cv=RunCV(
            folds=cfg.cv.folds,
            repeats=cfg.cv.repeats,
            strategy=cfg.cv.strategy,
            folds_done=len(cv),
            interval="paired t over folds x repeats, Nadeau-Bengio corrected",
        ),
        combinations=combos,
        branches=branches,
    )
    if len(combos) > 1:
        doc["selection"] = selection(combos, cfg.criteria.metric)
    holdout = [f for f in folds if f.get("fold_kind") == HOLDOUT]
    if holdout:
        casemix = [f for f in folds if f.get("fold_kind") == CASEMIX]
        doc["holdout"] = holdout_summary(cfg, holdout[0], combos, casemix)
        for c, row in zip(combos, doc["holdout"]["combinations"], strict=True):
            confirm_on_holdout(cfg, c["verdict"], row)
    radar = summarize_radar(cv, cfg.radar.top)
    if radar is not None:
        doc["radar"] = radar
    comparison = summarize_comparison(cv)
    if comparison is not None:
        doc["feature_comparison"] = comparison
    return doc


def selection(combos: list[Any], metric: str) -> dict[str, Any]:
    """Which combination a search would pick: the highest mean paired difference from the
    run's common reference on their common rows (so no combination gains from its rows),
    labelled as picked from N (the maximum of N noisy differences is optimistic)."""

    def score(c: Mapping[str, Any]) -> float:
        ref = c.get("reference")
        value = ref["mean_difference"] if ref else None
        return -math.inf if value is None or math.isnan(value) else value

    best = max(combos, key=score)
    ref = best.get("reference") or {}
    return {
        "selected": best["modalities"],
        "from": len(combos),
        "metric": metric,
        "reference": ref.get("reference"),
        "versus_reference": score(best),
        "mean": ref.get("mean"),
        "n": sum(ref.get("n") or []),
        "ranking": [
            {
                "modalities": c["modalities"],
                "versus_reference": score(c),
                "n": sum((c.get("reference") or {}).get("n") or []),
            }
            for c in sorted(combos, key=score, reverse=True)
        ],
        "note": (
            f"highest mean paired difference from {ref.get('reference')} on common rows of "
            f"{len(combos)} combinations: optimistic, confirm on new data"
        ),
    }


def pooled_kappas(folds: Sequence[Mapping[str, Any]], index: int) -> dict[str, Any] | None:
    """Both kappas of combination `index` pooled over folds (their confusion matrices
    summed: the rows are disjoint), with n."""
    from dfu_tui.engine.curve import kappa_of_confusion

    matrices = [np.asarray(f["combinations"][index]["confusion"]) for f in folds]
    if not matrices:
        return None
    total = np.sum(matrices, axis=0)
    return {
        "kappa": kappa_of_confusion(total),
        "quadratic_kappa": kappa_of_confusion(total, quadratic=True),
        "n": int(total.sum()),
    }


def holdout_summary(
    cfg: Config,
    fold: Mapping[str, Any],
    combos: list[Any],
    casemix: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The temporal hold-out: each combination and branch on the latest-enrolled patients,
    with a patient-bootstrap interval, beside its cross-validation mean. The gap splits in
    two: case mix (the same patients scored by grouped CV on every other patient, minus the
    CV mean: how much harder these patients are) and era (the hold-out minus that: what is
    left for the passage of time)."""
    metric = cfg.criteria.metric
    rows = []
    for i, c in enumerate(combos):
        m = fold["combinations"][i]
        cv_mean = c["mean"][metric]
        row = {
            "modalities": c["modalities"],
            "kappa": m["kappa"],
            "quadratic_kappa": m["quadratic_kappa"],
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "n": m["n"],
            "interval": m.get("interval"),
            "cv_mean": cv_mean,
            "drift": m[metric] - cv_mean,
            "flags": m["flags"],
        }
        mix = pooled_kappas(casemix or [], i)
        if mix is not None:
            row["same_patients_cv"] = mix
            row["case_mix"] = mix[metric] - cv_mean
            row["era"] = m[metric] - mix[metric]
        rows.append(row)
    return {
        "label": "temporal hold-out (latest-enrolled patients)",
        "order": cfg.cv.order_column or cfg.data.patient_column,
        "fraction": cfg.cv.holdout_fraction,
        "n_val": fold.get("n_val"),
        "n_train": fold.get("n_train"),
        "metric": metric,
        "interval": f"patient bootstrap, {BOOTSTRAP_RESAMPLES} resamples, percentile",
        "case_mix_folds": len(casemix or []),
        "combinations": rows,
        "branches": {
            b: {k: m[k] for k in ("kappa", "quadratic_kappa", "n")}
            for b, m in fold["branches"].items()
        },
    }


def confirm_on_holdout(cfg: Config, v: Verdict, row: Mapping[str, Any]) -> None:
    """Mark a verdict confirmed or not on later patients, with a caveat when the hold-out
    misses the minimum, disagrees with CV or is not conclusive."""
    from dfu_tui.engine.caveats import holdout_caveat

    caveat = holdout_caveat(cfg, dict(row))
    v["holdout"] = {
        "value": row.get(cfg.criteria.metric),
        "interval": row.get("interval"),
        "n": row.get("n"),
        "threshold": cfg.criteria.minimum_kappa,
        "confirmed": caveat is None or caveat["confirmed"],
    }
    if caveat is not None:
        v.setdefault("caveats", []).append(caveat)


def finite(doc: Any) -> Any:
    """The document with NaN and infinities as None (JSON has neither)."""
    if isinstance(doc, float) and (math.isnan(doc) or math.isinf(doc)):
        return None
    if isinstance(doc, dict):
        return {k: finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [finite(v) for v in doc]
    return doc
