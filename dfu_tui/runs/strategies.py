"""Fusion strategies side by side: the table of every fusion of `fusion.compare` for one
combination, from summary.json or from the folds finished so far (console, `show`, the
dashboard and the report show the same cells)."""

from __future__ import annotations

from typing import Any

from dfu_tui.config import FUSIONS, Config
from dfu_tui.engine.rules import SCALE_NAMES
from dfu_tui.runs.state import RunState


def columns(strategies: dict[str, Any]) -> tuple[str, ...]:
    """The column headings of a strategy table, the decisive ones first (they fit at 80
    columns): the criteria's scale with its n, the paired difference, the flags."""
    scale = SCALE_NAMES[strategies["metric"]]
    other = "kappa" if strategies["metric"] == "quadratic_kappa" else "quadratic_kappa"
    return (
        "fusion",
        scale,
        "n",
        f"vs {strategies['reference']} [95% CI]",
        "flags",
        SCALE_NAMES[other],
        "train-val gap",
        "learned",
    )


def title(name: str, strategies: dict[str, Any], so_far: str = "") -> str:
    """What a strategy table is: whose, over how many folds, compared how, and its marks."""
    folds = len(strategies["rows"][0]["folds"])
    scale = SCALE_NAMES[strategies["metric"]]
    return (
        f"Fusion strategies of {name} on the same branch predictions, {folds} validation "
        f"folds{so_far}: mean ± sample sd on each fusion's n samples; vs "
        f"{strategies['reference']}: paired difference on the same rows ({scale}, corrected "
        "95% CI; ≈ not distinguishable); flags: C collapse, W warning"
    )


def plus_minus(mean: float | None, sd: float | None) -> str:
    if mean is None or mean != mean:
        return "-"
    return f"{mean:.3f}" if sd is None or sd != sd else f"{mean:.3f} ± {sd:.3f}"


def learned_text(r: dict[str, Any]) -> str:
    """What a fusion learned: learned_alpha's mean alpha (the metadata weight), tuned's mean
    weights over folds; nothing for fixed."""
    if r.get("mean_alpha") is not None:
        return f"alpha {r['mean_alpha']:.2f}"
    weights = [w for w in r.get("learned_weights") or [] if w]
    spec = FUSIONS.get(str(r.get("strategy")))
    if not weights or (spec is not None and not spec.shows_weights):
        return "-"
    mean = {m: sum(w.get(m, 0.0) for w in weights) / len(weights) for m in weights[0]}
    return "/".join(f"{v:.2f}" for v in mean.values())


def paired_cell(v: dict[str, Any]) -> str:
    """A paired difference in a table cell: `+0.078 [-0.05,+0.20] ≈` (≈: not
    distinguishable; or beats, worse), `+0.078 (1 fold)` without an interval."""
    low, high = v["ci95"]
    mark = {"beats": "beats", "worse": "worse"}.get(v["outcome"], "≈")
    if low is None or high is None or low != low:
        return f"{v['mean_difference']:+.3f} (1 fold)"
    return f"{v['mean_difference']:+.3f} [{low:+.2f},{high:+.2f}] {mark}"


def cells(r: dict[str, Any], metric: str = "quadratic_kappa") -> tuple[str, ...]:
    """One fusion's row of a strategy table, in the order of `columns`."""
    other = "kappa" if metric == "quadratic_kappa" else "quadratic_kappa"
    collapse = sum(f["level"] == "collapse" for f in r["flags"])
    flags = f"{collapse}C {len(r['flags']) - collapse}W" if r["flags"] else "-"
    v = r.get("versus_reference")
    versus = paired_cell(v) if v else "reference"
    gap = r.get("gap")
    return (
        r["name"],
        plus_minus(r["mean"][metric], r["std"][metric]),
        str(r["n"]),
        versus,
        flags,
        plus_minus(r["mean"][other], r["std"][other]),
        "-" if gap is None or gap != gap else f"{gap:+.3f}",
        learned_text(r),
    )


def strategies_so_far(cfg: Config, state: RunState, modalities: list[str]) -> dict[str, Any] | None:
    """The strategy table of one combination over the cross-validation folds finished so
    far (the final one is in summary.json), or None when it has none."""
    from dfu_tui.engine.paired import summarize_strategies, test_train_ratio
    from dfu_tui.engine.records import combination_of

    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    if not folds:
        return None
    index = next(
        (i for i, c in enumerate(folds[0]["combinations"]) if c["modalities"] == modalities), None
    )
    if index is None:
        return None
    per = [combination_of(f, index) for f in folds]
    return summarize_strategies(
        per,
        cfg.criteria.metric,
        test_train_ratio(folds),
        cfg.criteria.confidence,
        [dict(f) for f in folds],
    )


def strategies_of(
    cfg: Config | None, state: RunState, summary: dict[str, Any] | None, modalities: list[str]
) -> tuple[dict[str, Any] | None, str]:
    """The final table from summary.json when there is one, else the one so far; and a note
    saying which."""
    if summary is not None:
        for c in summary.get("combinations", []):
            if c["modalities"] == modalities and c.get("strategies"):
                return c["strategies"], ""
    if cfg is None:
        return None, ""
    table = strategies_so_far(cfg, state, modalities)
    cv = state.folds_per_repeat * state.repeats
    return table, f" (so far: {state.folds_done} of {cv})" if table else ""
