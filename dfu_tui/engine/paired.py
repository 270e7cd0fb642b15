"""Paired comparisons over folds: the difference, its sd and a t interval."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from dfu_tui.data.schema import CLASSES, METADATA
from dfu_tui.engine.records import FeatureComparison, RadarSummary
from dfu_tui.engine.tdist import t_quantile


def paired_difference(
    with_: list[float],
    without: list[float],
    test_train_ratio: float = 0.0,
    confidence: float = 0.95,
    power: float = 0.80,
) -> dict[str, Any]:
    """`with_ - without` per fold: mean, sd, a t interval over folds, and the folds.

    Both lists hold one value per fold, measured on the same validation samples. Folds of
    cross-validation share training data, so with `test_train_ratio` (n_validation /
    n_training) the variance is corrected as Nadeau and Bengio (2003) propose for repeated
    CV: (1/J + n_val/n_train) * sd^2 over the J folds. With one fold there is no interval;
    "distinguishable" says whether the interval excludes 0.

    The power of the design: `half_width` is the smallest observed difference the interval
    can call distinguishable; `mdd` the minimum detectable difference, the true difference
    this design finds with probability `power` at the observed sd
    ((t_{1-a/2} + t_{power}) * se on J - 1 degrees of freedom).
    """
    diffs = [a - b for a, b in zip(with_, without, strict=True)]
    ok = [d for d in diffs if not math.isnan(d)]
    n = len(ok)
    mean = statistics.fmean(ok) if ok else math.nan
    sd = statistics.stdev(ok) if n > 1 else math.nan
    se = sd * math.sqrt(1 / n + test_train_ratio) if n > 1 else math.nan
    t_alpha = t_quantile(0.5 + confidence / 2, n - 1) if n > 1 else math.nan
    half = t_alpha * se if n > 1 else math.nan
    mdd = (t_alpha + t_quantile(power, n - 1)) * se if n > 1 else math.nan
    low, high = mean - half, mean + half
    return {
        "folds": n,
        "differences": diffs,
        "mean_difference": mean,
        "sd_difference": sd,
        "ci95": [low, high],
        "confidence": confidence,
        "correction": "nadeau-bengio" if test_train_ratio else "none",
        "distinguishable": bool(n > 1 and (low > 0 or high < 0)),
        "half_width": half,
        "mdd": mdd,
        "power": power,
    }


def outcome(diff: dict[str, Any]) -> str:
    """`beats`, `worse` or `not distinguishable`, from a paired difference's interval."""
    if not diff["distinguishable"]:
        return "not distinguishable"
    return "beats" if diff["mean_difference"] > 0 else "worse"


def test_train_ratio(folds: Sequence[Mapping[str, Any]]) -> float:
    """Mean n_validation / n_training over folds (0 when the folds do not say)."""
    ratios = [f["n_val"] / f["n_train"] for f in folds if f.get("n_train") and f.get("n_val")]
    return statistics.fmean(ratios) if ratios else 0.0


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (n - 1) of the finite values; sd is NaN below two values."""
    ok = [v for v in values if v is not None and not math.isnan(v)]
    mean = statistics.fmean(ok) if ok else math.nan
    return mean, statistics.stdev(ok) if len(ok) > 1 else math.nan


def summarize_comparison(folds: Sequence[Mapping[str, Any]]) -> FeatureComparison | None:
    """Per row (metadata alone, each fused combination): both kappas per fold and the paired
    difference on each scale."""
    per = [f["feature_comparison"] for f in folds if "feature_comparison" in f]
    if not per:
        return None
    ratio = test_train_ratio([f for f in folds if "feature_comparison" in f])
    rows = []
    for i, row in enumerate(per[0]["rows"]):
        entry: dict[str, Any] = {"modalities": row["modalities"]}
        for scale in ("kappa", "quadratic_kappa"):
            with_ = [p["rows"][i]["with"][scale] for p in per]
            without = [p["rows"][i]["without"][scale] for p in per]
            entry[scale] = {
                "with": with_,
                "without": without,
                "mean_with": statistics.fmean(with_),
                "mean_without": statistics.fmean(without),
                **paired_difference(with_, without, ratio),
            }
        rows.append(entry)
    return FeatureComparison(
        group=per[0]["group"],
        samples=sum(p["n"] for p in per),
        forest_seeds=min(p.get("forest_seeds", 1) for p in per),
        rows=rows,
    )


def summarize_radar(folds: Sequence[Mapping[str, Any]], top: int) -> RadarSummary | None:
    """Mean importance and single-feature kappa per column over folds, and the flags."""
    radars = [f["radar"] for f in folds if "radar" in f]
    if not radars:
        return None
    columns = [r["feature"] for r in radars[0]["features"]]
    table = []
    for c in columns:
        rows = [next(r for r in radar["features"] if r["feature"] == c) for radar in radars]
        imp = [r["importance"] for r in rows if r["importance"] is not None]
        single = [r["single_kappa"] for r in rows if r["single_kappa"] is not None]
        table.append(
            {
                "feature": c,
                "groups": rows[0]["groups"],
                "importance": statistics.fmean(imp) if imp else None,
                "importance_sd_over_folds": statistics.stdev(imp) if len(imp) > 1 else None,
                "single_kappa": statistics.fmean(single) if single else None,
                "top_in_folds": sum(1 for r in rows if (r["importance_rank"] or top + 1) <= top),
            }
        )
    table.sort(key=lambda r: (-(r["importance"] or 0.0), r["feature"]))
    flags = [
        {"fold": f["fold"], **flag} for f in folds if "radar" in f for flag in f["radar"]["flags"]
    ]
    return RadarSummary(folds=len(radars), features=table, flags=flags)


METRIC_NAMES = {"kappa": "unweighted kappa", "quadratic_kappa": "quadratic kappa"}
TRAIN_KEYS = {"kappa": "train_kappa", "quadratic_kappa": "train_quadratic_kappa"}
MEAN_KEYS = (
    "kappa",
    "quadratic_kappa",
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "train_kappa",
    "train_quadratic_kappa",
)


def fold_means(per: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample sd over folds of each summary metric (and the mean per-class F1)."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for key in MEAN_KEYS:
        mean[key], std[key] = mean_sd([f.get(key, math.nan) for f in per])
    for c in CLASSES:
        mean[f"f1_{c}"], _ = mean_sd([f["f1"][c] for f in per if "f1" in f])
    return mean, std


def paired_summary(
    combo: list[str],
    per: list[dict[str, Any]],
    metric: str,
    ratio: float,
    confidence: float,
    power: float = 0.80,
) -> dict[str, Any] | None:
    """The combination and each branch scored on the same rows (those with every modality of
    the combination), and the paired differences the verdict uses: against metadata alone
    (every combination but metadata alone, when the run has the metadata branch) and against
    each of its image branches (a combination of more than one modality)."""
    per = [f for f in per if "paired" in f]
    if not per:
        return None
    fused = [f["paired"]["fused"][metric] for f in per]
    names = list(per[0]["paired"]["branches"])
    branches = {b: [f["paired"]["branches"][b][metric] for f in per] for b in names}
    out: dict[str, Any] = {
        "metric": metric,
        "n": [f["paired"]["n"] for f in per],
        "fused": dict(zip(("mean", "sd"), mean_sd(fused), strict=True)),
        "branches": {
            b: dict(zip(("mean", "sd"), mean_sd(v), strict=True)) for b, v in branches.items()
        },
        "versus": {},
    }

    def versus(branch: str) -> dict[str, Any]:
        diff = paired_difference(fused, branches[branch], ratio, confidence, power)
        return {"branch": branch, **diff, "outcome": outcome(diff)}

    if METADATA in branches and combo != [METADATA]:
        out["versus"]["metadata"] = versus(METADATA)
    images = [b for b in combo if b != METADATA]
    if images and len(combo) > 1:
        out["versus"]["images"] = {b: versus(b) for b in images}
        best = max(images, key=lambda b: mean_sd(branches[b])[0])  # the strongest, as before
        out["versus"]["image"] = out["versus"]["images"][best]
    return out


def reference_summary(
    per: list[dict[str, Any]], metric: str, ratio: float, confidence: float, power: float
) -> dict[str, Any] | None:
    """The combination against the run's common reference (metadata alone, or the first
    combination when the run has no metadata branch) on their common rows, per fold: what
    selection and every ranking compare, so that no combination gains from its rows."""
    per = [f for f in per if "reference" in f]
    if not per:
        return None
    mine = [f["reference"]["fused"][metric] for f in per]
    ref = [f["reference"]["reference"][metric] for f in per]
    diff = paired_difference(mine, ref, ratio, confidence, power)
    return {
        "reference": per[0]["reference"]["name"],
        "metric": metric,
        "n": [f["reference"]["n"] for f in per],
        "mean": mean_sd(mine)[0],
        "reference_mean": mean_sd(ref)[0],
        **diff,
        "outcome": outcome(diff),
    }


def collapse_findings(per: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Class collapse, once per finding: each fold whose flags hold a collapse-level rule is
    one finding, whichever rules and classes show it (one class predicted for every row
    raises `missing_class` twice, `absolute_cap` and `low_entropy`: one collapse)."""
    out = []
    for f in per:
        rules = sorted({fl["rule"] for fl in f.get("flags", []) if fl.get("level") == "collapse"})
        if rules:
            out.append({"fold": f.get("fold"), "repeat": f.get("repeat", 1), "rules": rules})
    return out


def repeat_means(repeat: int, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """One repeat's mean kappas: on all samples, and on the same rows (as the verdict)."""
    out: dict[str, Any] = {"repeat": repeat, "folds": len(folds)}
    for k in METRIC_NAMES:
        out[k] = mean_sd([f[k] for f in folds])[0]
    paired = [f["paired"]["fused"] for f in folds if "paired" in f]
    if paired:
        out["paired"] = {k: mean_sd([p[k] for p in paired])[0] for k in METRIC_NAMES}
    return out


def summarize_strategies(
    per: list[dict[str, Any]],
    metric: str,
    ratio: float,
    confidence: float,
    folds: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Every fusion of `fusion.compare` for one combination over its folds: both kappas on
    all its rows (mean, sample sd, n), the train/validation gap, what it learned, its flags,
    and its paired difference from the configured fusion (the reference, first) on their
    common rows, on the criteria's scale. With the fold results (`folds`, in the order of
    `per`), each branch of the combination alone follows, paired with the reference on the
    rows with every modality (as the verdict)."""
    results = None
    if folds is not None:
        results = [f for f, p in zip(folds, per, strict=True) if p.get("strategies")]
    per = [f for f in per if f.get("strategies")]
    if not per:
        return None
    names = [row["name"] for row in per[0]["strategies"]]
    train_key = TRAIN_KEYS[metric]
    rows = []
    for i, name in enumerate(names):
        folds = [f["strategies"][i] for f in per]
        mean = {k: mean_sd([r[k] for r in folds])[0] for k in (*METRIC_NAMES, train_key)}
        sd = {k: mean_sd([r[k] for r in folds])[1] for k in METRIC_NAMES}
        row: dict[str, Any] = {
            "name": name,
            "strategy": folds[0]["strategy"],
            "folds": [
                {"fold": f["fold"], "repeat": f.get("repeat", 1), **r}
                for f, r in zip(per, folds, strict=True)
            ],
            "n": sum(r["n"] for r in folds),
            "mean": mean,
            "std": sd,
            "gap": mean[train_key] - mean[metric],
            "flags": [
                {"fold": f["fold"], **fl}
                for f, r in zip(per, folds, strict=True)
                for fl in r["flags"]
            ],
        }
        alphas = [r["mean_alpha"] for r in folds if r.get("mean_alpha") is not None]
        if alphas:
            row["mean_alpha"] = statistics.fmean(alphas)
        if folds[0]["strategy"] != "fixed":  # what it learned, fold by fold
            row["learned_weights"] = [r["weights"] for r in folds]
        if i > 0:
            mine = [r["paired"]["strategy"][metric] for r in folds]
            ref = [r["paired"]["reference"][metric] for r in folds]
            diff = paired_difference(mine, ref, ratio, confidence)
            row["versus_reference"] = {
                "n": [r["paired"]["n"] for r in folds],
                "mean": mean_sd(mine)[0],
                "reference_mean": mean_sd(ref)[0],
                **diff,
                "outcome": outcome(diff),
            }
        rows.append(row)
    for b in per[0]["paired"]["branches"] if results is not None else []:
        alone = [f["branches"][b] for f in results or []]
        mean = {k: mean_sd([r[k] for r in alone])[0] for k in (*METRIC_NAMES, train_key)}
        mine = [p["paired"]["branches"][b][metric] for p in per]
        ref = [p["paired"]["fused"][metric] for p in per]
        diff = paired_difference(mine, ref, ratio, confidence)
        rows.append(
            {
                "name": f"{b} alone",
                "strategy": "alone",
                "branch": b,
                "folds": [
                    {"fold": f["fold"], "repeat": f.get("repeat", 1), **r}
                    for f, r in zip(results or [], alone, strict=True)
                ],
                "n": sum(r["n"] for r in alone),
                "mean": mean,
                "std": {k: mean_sd([r[k] for r in alone])[1] for k in METRIC_NAMES},
                "gap": mean[train_key] - mean[metric],
                "flags": [
                    {"fold": f["fold"], **fl}
                    for f, r in zip(results or [], alone, strict=True)
                    for fl in r["flags"]
                ],
                "versus_reference": {
                    "n": [p["paired"]["n"] for p in per],
                    "mean": mean_sd(mine)[0],
                    "reference_mean": mean_sd(ref)[0],
                    **diff,
                    "outcome": outcome(diff),
                },
            }
        )
    return {"reference": names[0], "metric": metric, "rows": rows}
