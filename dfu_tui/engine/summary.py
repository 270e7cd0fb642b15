"""The run's summary: fold results gathered per combination and branch, judged against the
criteria, a search's selection, and the temporal hold-out beside cross-validation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dfu_tui.config import Config
from dfu_tui.engine.folds import CV, HOLDOUT
from dfu_tui.engine.plan import branches_of
from dfu_tui.engine.records import (
    CASEMIX,
    CombinationSummary,
    FoldResult,
    RunCV,
    Summary,
    Verdict,
    combination_of,
)
from dfu_tui.engine.scoring import BOOTSTRAP_RESAMPLES

# An epoch record of an image task (epoch, loss, kappas, shares, flags, ...).
EpochCallback = Callable[[dict[str, Any]], None]


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
