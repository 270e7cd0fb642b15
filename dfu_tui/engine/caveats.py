"""The caveats a verdict carries beside its tiers, so that no claim travels without them.

- `treatment_feature` / `dominant_feature`: a column the radar flagged among the top
  features of a combination with metadata, with the paired with/without difference of its
  group when the run measured it, and how to measure it when it did not;
- `power`: fewer folds than the criteria ask for (the verdict is exploratory), or a paired
  comparison whose minimum detectable difference exceeds the difference the criteria care
  about;
- `holdout`: a temporal hold-out below a threshold (added by the summary, which has it).

Pure Python over the fold results and the verdict: the dashboard reads the same caveats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dfu_tui.config import Config
from dfu_tui.data.schema import FEATURE_GROUPS, METADATA
from dfu_tui.engine.paired import summarize_comparison

SHORT = {"kappa": "κ", "quadratic_kappa": "QWK"}


def group_of(feature: str) -> str | None:
    """The feature group holding a column (None when no group does)."""
    return next((g for g, cols in FEATURE_GROUPS.items() if feature in cols), None)


def flagged_features(folds: list[dict[str, Any]]) -> dict[tuple[str, str], set[int]]:
    """(rule, column) -> the folds whose radar flagged that column."""
    out: dict[tuple[str, str], set[int]] = {}
    for f in folds:
        radar = f.get("radar") or {}
        # A flag's detail starts with its column and a colon; columns may hold colons too
        # ("Offloading: Scotcast Boot or RCW"), so match the longest known column.
        names = sorted((str(r.get("feature")) for r in radar.get("features", [])), key=len)
        for flag in radar.get("flags", []):
            if flag.get("rule") not in ("treatment_feature", "dominant_feature"):
                continue
            detail = str(flag.get("detail", ""))
            known = [c for c in names if detail.startswith(f"{c}:")]
            column = known[-1] if known else detail.split(":", 1)[0]
            out.setdefault((flag["rule"], column), set()).add(int(f.get("fold", 0)))
    return out


def comparison_difference(
    cfg: Config, combo: list[str], folds: list[dict[str, Any]], group: str
) -> dict[str, Any] | None:
    """The paired with-minus-without difference of `group` for this combination, on the
    criteria's scale, when the run compared that group (None otherwise)."""
    if cfg.features.compare != group:
        return None
    summary = summarize_comparison([f for f in folds if "feature_comparison" in f])
    if summary is None:
        return None
    for row in summary["rows"]:
        if row["modalities"] == combo:
            return dict(row[cfg.criteria.metric])
    return None


def feature_caveats(cfg: Config, combo: list[str], folds: list[dict[str, Any]]) -> list[dict]:
    """One caveat per column the radar flagged (treatment, dominant or both) for a
    combination with metadata, with how much its group carries when the run measured it."""
    if METADATA not in combo:
        return []
    n = len(folds)
    short = SHORT[cfg.criteria.metric]
    out: list[dict[str, Any]] = []
    by_column: dict[str, dict[str, set[int]]] = {}  # one caveat per column, all its rules
    for (rule, column), hit in flagged_features(folds).items():
        by_column.setdefault(column, {})[rule] = hit
    for column, rules in sorted(by_column.items()):
        hit = set().union(*rules.values())
        if "treatment_feature" not in rules and len(hit) < max(2, math.ceil(n / 4)):
            continue  # dominant in a fold or two of many: the radar's flags show it
        rule = "treatment_feature" if "treatment_feature" in rules else "dominant_feature"
        what = " and ".join(
            w
            for r, w in (("treatment_feature", "treatment"), ("dominant_feature", "dominant"))
            if r in rules
        )
        group = group_of(column)
        text = f"{what} feature {column} among the top features in {len(hit)} of {n} folds"
        entry: dict[str, Any] = {
            "kind": rule,
            "rules": sorted(rules),
            "feature": column,
            "group": group,
            "folds": len(hit),
        }
        diff = comparison_difference(cfg, combo, folds, group) if group else None
        if diff is not None:
            low, high = diff["ci95"]
            ci = "no interval" if math.isnan(low) else f"95% CI {low:+.3f} to {high:+.3f}"
            text += (
                f"; with minus without the {group} group: {diff['mean_difference']:+.3f} "
                f"{short} ({ci}, {diff['folds']} folds paired): that much of the score is "
                f"carried by {group}"
            )
            entry["difference"] = {
                "mean": diff["mean_difference"],
                "ci95": [low, high],
                "folds": diff["folds"],
                "distinguishable": diff["distinguishable"],
            }
        elif group:
            text += (
                f"; how much it carries is not measured: run with --compare-features {group} "
                f'(features.compare = "{group}")'
            )
        else:
            text += "; it is in no feature group, so no with/without comparison measures it"
        entry["text"] = text
        out.append(entry)
    return out


def power_caveat(cfg: Config, v: Mapping[str, Any]) -> dict[str, Any] | None:
    """Too few folds, or comparisons that cannot detect the difference the criteria care
    about: one caveat naming both."""
    design = v.get("design") or {}
    crit = cfg.criteria
    short = SHORT[crit.metric]
    parts = []
    n = design.get("folds", 0)
    if design.get("exploratory"):
        repeats = max(2, math.ceil(crit.min_folds / max(1, cfg.cv.folds)))
        parts.append(
            f"underpowered: {n} folds in all, fewer than {crit.min_folds}, so the verdict is "
            f"exploratory; cv.repeats = {repeats} gives {repeats * cfg.cv.folds} folds"
        )
    weak = [
        c
        for c in v.get("criteria", [])
        if c.get("paired") and c.get("mdd") is not None and c["mdd"] > crit.min_difference
    ]
    if weak:
        detect = ", ".join(f"{c['mdd']:.3f} vs {c['versus']}" for c in weak)
        parts.append(
            f"smallest difference this design detects ({weak[0].get('power', 0.8):.0%} "
            f"power): {detect} {short}, above the {crit.min_difference:.2f} the criteria "
            "care about (criteria.min_difference)"
        )
    if not parts:
        return None
    return {"kind": "power", "folds": n, "text": "; ".join(parts)}


def run_caveats(
    cfg: Config, combo: list[str], folds: list[dict[str, Any]], v: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every caveat of one combination's verdict over its cross-validation folds."""
    out = feature_caveats(cfg, combo, folds)
    power = power_caveat(cfg, v)
    if power is not None:
        out.append(power)
    return out


def holdout_caveat(cfg: Config, row: dict[str, Any]) -> dict[str, Any] | None:
    """What the temporal hold-out says against the verdict (`row`: the combination's
    hold-out entry of the summary), None when nothing: at or below the minimum, it is not
    confirmed on later patients; its patient-bootstrap interval below the CV mean, it
    disagrees with CV (with the gap's case-mix / era split); its interval reaching the
    minimum, it is not conclusive."""
    metric = cfg.criteria.metric
    value = row.get(metric)
    if value is None or math.isnan(value):
        return None
    least = cfg.criteria.minimum_kappa
    ci = row.get("interval") or [None, None]
    interval = (
        f" (patient bootstrap 95% CI {ci[0]:.3f} to {ci[1]:.3f})" if ci[0] is not None else ""
    )
    short = SHORT[metric]
    said = f"temporal hold-out {short} {value:.3f}{interval}, n={row.get('n')}"
    cv_mean = row.get("cv_mean")
    split = (
        f"; of its gap {row['drift']:+.3f} from CV, case mix {row['case_mix']:+.3f} (the same "
        f"patients by grouped CV: {row['same_patients_cv'][metric]:.3f}) and era "
        f"{row['era']:+.3f}"
        if row.get("case_mix") is not None and row.get("drift") is not None
        else ""
    )
    if value <= least:
        kind, text = (
            "holdout",
            (f"not confirmed on later patients: {said}, at or below the minimum {least:.2f}"),
        )
    elif ci[1] is not None and cv_mean is not None and ci[1] < cv_mean:
        kind, text = (
            "holdout_disagrees",
            (f"the later patients disagree with CV: {said} lies below the CV mean {cv_mean:.3f}"),
        )
    elif ci[0] is not None and ci[0] <= least:
        kind, text = (
            "holdout_uncertain",
            (f"not conclusive on later patients: {said} reaches the minimum {least:.2f}"),
        )
    else:
        return None
    return {"kind": kind, "confirmed": kind != "holdout", "text": text + split}


def selection_text(selected: dict[str, Any]) -> str:
    """`Selected metadata+thermal_map as the best of 3 (+0.010 QWK vs metadata on common
    rows, n=425): ...`; a summary written before rankings were paired says what it ranked."""
    name = "+".join(selected["selected"])
    short = SHORT.get(selected.get("metric", "kappa"), "κ")
    diff = selected.get("versus_reference")
    if diff is None or (isinstance(diff, float) and math.isinf(diff)):
        mean = selected.get("mean")
        on = f"{short} {mean:.3f} on its own rows" if mean is not None else "its own rows"
        return f"Selected {name} as the best of {selected['from']} ({on}): {selected['note']}"
    return (
        f"Selected {name} as the best of {selected['from']} ({diff:+.3f} {short} vs "
        f"{selected.get('reference')} on common rows, n={selected.get('n')}): "
        f"{selected['note']}"
    )


def holdout_text(metric: str, holdout: dict[str, Any], row: dict[str, Any]) -> str:
    """One combination on the temporal hold-out: its score with a patient-bootstrap interval
    and n, the CV mean, and the gap split into case mix and era when measured."""
    short = SHORT.get(metric, "κ")
    ci = row.get("interval")
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else ""
    text = (
        f"{'+'.join(row['modalities'])} {short} {row[metric]:.3f}{interval} n={row['n']} on "
        f"the latest-enrolled patients (by {holdout.get('order')}) vs CV mean "
        f"{row['cv_mean']:.3f}: gap {row['drift']:+.3f}"
    )
    if row.get("case_mix") is not None:
        same = row["same_patients_cv"][metric]
        text += (
            f" = case mix {row['case_mix']:+.3f} (these patients by grouped CV on all others: "
            f"{same:.3f}) + era {row['era']:+.3f}"
        )
    return text
