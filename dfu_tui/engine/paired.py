"""Paired comparisons over folds: the difference, its sd and a t interval."""

from __future__ import annotations

import math
import statistics
from typing import Any


def paired_difference(with_: list[float], without: list[float]) -> dict[str, Any]:
    """`with_ - without` per fold: mean, sd, a 95% t interval over folds, and the folds.

    Both lists hold one value per fold, measured on the same validation samples. With one
    fold there is no sd or interval; "distinguishable" says whether the interval excludes 0.
    """
    from scipy.stats import t

    diffs = [a - b for a, b in zip(with_, without, strict=True)]
    n = len(diffs)
    mean = statistics.fmean(diffs) if diffs else math.nan
    sd = statistics.stdev(diffs) if n > 1 else math.nan
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else math.nan
    low, high = mean - half, mean + half
    return {
        "folds": n,
        "differences": diffs,
        "mean_difference": mean,
        "sd_difference": sd,
        "ci95": [low, high],
        "distinguishable": bool(n > 1 and (low > 0 or high < 0)),
    }


def summarize_comparison(folds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per row (metadata alone, each fused combination): both kappas per fold and the paired
    difference on each scale."""
    per = [f["feature_comparison"] for f in folds if "feature_comparison" in f]
    if not per:
        return None
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
                **paired_difference(with_, without),
            }
        rows.append(entry)
    return {"group": per[0]["group"], "samples": sum(p["n"] for p in per), "rows": rows}


def summarize_radar(folds: list[dict[str, Any]], top: int) -> dict[str, Any] | None:
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
    return {"folds": len(radars), "features": table, "flags": flags}
