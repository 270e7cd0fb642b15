"""A combination judged over its cross-validation folds: the paired statistics
(`paired.py`), the verdict on them (`rules.py`) and the verdict's caveats (`caveats.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dfu_tui.config import Config
from dfu_tui.data.schema import METADATA
from dfu_tui.engine.caveats import run_caveats
from dfu_tui.engine.paired import (
    collapse_findings,
    fold_means,
    paired_summary,
    reference_summary,
    repeat_means,
)
from dfu_tui.engine.records import Judged
from dfu_tui.engine.rules import verdict


def judge_combination(
    cfg: Config,
    combo: list[str],
    per: list[dict[str, Any]],
    ratio: float,
    folds: Sequence[Mapping[str, Any]] | None = None,
) -> Judged:
    """Mean, sample sd, per-repeat means, paired scores and the verdict of one combination
    over its cross-validation folds; with the fold results (`folds`), the verdict carries the
    caveats of the radar and the feature comparison."""
    crit = cfg.criteria
    metric = crit.metric
    mean, std = fold_means(per)
    paired = paired_summary(combo, per, metric, ratio, crit.confidence, crit.power)
    judged = dict(mean)
    # the rows the thresholds are judged on, said beside the number (it differs from the
    # all-samples mean of the tables)
    rows = (sum(int(f.get("n") or 0) for f in per), "all its validation samples")
    if paired is not None:  # thresholds on the paired rows, as every comparison
        judged[metric] = paired["fused"]["mean"]
        rows = (sum(paired["n"]), "the validation rows with every modality of it")
    versus = paired["versus"] if paired else {}
    repeats: dict[int, list[dict[str, Any]]] = {}
    for f in per:
        repeats.setdefault(f.get("repeat", 1), []).append(f)
    has_metadata = bool(paired and METADATA in paired["branches"])
    v = verdict(
        judged,
        collapse_findings(per),
        crit,
        combo,
        versus,
        has_metadata or METADATA in combo,
        len(per),
        rows,
    )
    v["caveats"] = run_caveats(cfg, combo, [dict(f) for f in folds or []], v)
    return Judged(
        mean=mean,
        std=std,
        n_folds=len(per),
        repeats=[repeat_means(r, fs) for r, fs in sorted(repeats.items())],
        paired=paired,
        reference=reference_summary(per, metric, ratio, crit.confidence, crit.power),
        verdict=v,
    )
