"""Collapse and health rules (pure functions) and the seed note's verdict.

Each rule has a name and a level (warning or collapse); each firing is a Flag naming the
numbers that made it fire.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dfu_tui.config import CollapseConfig, CriteriaConfig
from dfu_tui.data.schema import CLASSES
from dfu_tui.data.schema import METADATA as METADATA_NAME
from dfu_tui.engine.records import Design, Verdict

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
    return max(0.0, float(-(p * np.log(p)).sum()))


def wilson_lower(successes: float, n: int, confidence: float) -> float:
    """The lower end of the Wilson score interval of a proportion (0 when n is 0)."""
    if n <= 0:
        return 0.0
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z * z / n))


@dataclass(frozen=True)
class Counts:
    """What the share rules look at: class counts of the labels and of the predictions, and
    the unweighted kappa between them (None when unknown)."""

    true: np.ndarray
    pred: np.ndarray
    kappa: float | None = None

    @property
    def n(self) -> int:
        return int(self.pred.sum())

    @property
    def true_share(self) -> np.ndarray:
        return self.true / max(1, int(self.true.sum()))

    @property
    def pred_share(self) -> np.ndarray:
        return self.pred / max(1, self.n)

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray, kappa: float | None) -> Counts:
        n = len(CLASSES)
        return cls(np.bincount(y_true, minlength=n), np.bincount(y_pred, minlength=n), kappa)


def _chance(c: Counts, cfg: CollapseConfig) -> bool:
    """Agreement at chance level: unweighted kappa at or below `chance_kappa`."""
    return c.kappa is not None and not math.isnan(c.kappa) and c.kappa <= cfg.chance_kappa


def missing_class(c: Counts, cfg: CollapseConfig) -> list[Flag]:
    """A class with samples that is never predicted: collapse from `min_support` samples."""
    out = []
    for i, name in enumerate(CLASSES):
        if c.true[i] > 0 and c.pred[i] == 0:
            level = COLLAPSE if c.true[i] >= cfg.min_support else WARNING
            detail = (
                f"{name} never predicted, {int(c.true[i])} samples (true {c.true_share[i]:.2f})"
            )
            out.append(Flag("missing_class", level, detail))
    return out


def concentration(c: Counts, cfg: CollapseConfig, confidence: float | None = None) -> list[Flag]:
    """At most one flag per over-predicted class, the most severe that holds:

    - `absolute_cap` (collapse): the class holds `absolute_cap` of all predictions;
    - `chance_concentration` (collapse): over-predicted by `share_margin` at chance kappa
      (the seed note's failure: P 0.68 of predictions, true 0.56, kappa -0.02);
    - `dominant_class` (warning): over-predicted by `share_margin`, agreement above chance
      (a biased but useful model).

    With `confidence` (epoch flags on small inner splits), over-prediction also needs the
    Wilson lower bound of the predicted share to clear the true share.
    """
    out = []
    for i, name in enumerate(CLASSES):
        p, t = c.pred_share[i], c.true_share[i]
        over = p > t + cfg.share_margin
        if confidence is not None:
            over = over and wilson_lower(float(c.pred[i]), c.n, confidence) > t
        detail = f"{name} {p:.2f} of predictions, true {t:.2f}"
        if p >= cfg.absolute_cap and (confidence is None or over):
            out.append(Flag("absolute_cap", COLLAPSE, f"{detail} (cap {cfg.absolute_cap:.2f})"))
        elif over and _chance(c, cfg):
            out.append(
                Flag("chance_concentration", COLLAPSE, f"{detail}, unweighted kappa {c.kappa:.2f}")
            )
        elif over:
            out.append(Flag("dominant_class", WARNING, detail))
    return out


def low_entropy(c: Counts, cfg: CollapseConfig) -> list[Flag]:
    """Predictions far less diverse than the labels, at chance-level kappa."""
    h_true, h_pred = _entropy(c.true_share), _entropy(c.pred_share)
    if h_true > 0 and h_pred < cfg.entropy_ratio * h_true and _chance(c, cfg):
        detail = (
            f"predicted entropy {h_pred:.2f} < {cfg.entropy_ratio:.2f} x true {h_true:.2f}, "
            f"unweighted kappa {c.kappa:.2f}"
        )
        return [Flag("low_entropy", COLLAPSE, detail)]
    return []


def chance_kappa(kappa: float, cfg: CollapseConfig) -> list[Flag]:
    """Kappa at chance level."""
    if not math.isnan(kappa) and kappa <= cfg.chance_kappa:
        detail = f"unweighted kappa {kappa:.3f} <= {cfg.chance_kappa:.2f}"
        return [Flag("chance_kappa", WARNING, detail)]
    return []


def overfit_gap(train_kappa: float, kappa: float, cfg: CollapseConfig) -> list[Flag]:
    """Training kappa far above validation kappa."""
    gap = train_kappa - kappa
    if not math.isnan(gap) and gap > cfg.overfit_gap:
        detail = f"train kappa {train_kappa:.2f} - validation {kappa:.2f} = {gap:.2f}"
        return [Flag("overfit_gap", WARNING, detail + f" > {cfg.overfit_gap:.2f}")]
    return []


def alpha_pinned(mean_alpha: float, cfg: CollapseConfig) -> list[Flag]:
    """A learned fusion weight stuck near 0 or 1: the fusion has become one branch. A fusion
    warning, not a class collapse (the share rules say whether classes collapsed)."""
    if mean_alpha < cfg.alpha_pinned or mean_alpha > 1 - cfg.alpha_pinned:
        alone = "the image branches" if mean_alpha < 0.5 else "metadata"
        detail = f"mean alpha {mean_alpha:.3f}: the fusion is {alone} alone"
        return [Flag("alpha_pinned", WARNING, detail)]
    return []


def nan_loss(loss: float) -> list[Flag]:
    """Training diverged."""
    if math.isnan(loss) or math.isinf(loss):
        return [Flag("nan_loss", COLLAPSE, f"loss {loss}")]
    return []


#: Collapse rules whose detail already states the chance-level kappa.
CITES_KAPPA = ("chance_concentration", "low_entropy")
FOLD, EPOCH, TRAINING = "fold", "epoch", "training"  # where a rule runs


@dataclass(frozen=True)
class Evidence:
    """What the rules look at: class counts and kappas of one set of predictions (`counts`
    None: too few samples for the share rules), and what training or fusion adds."""

    counts: Counts | None = None
    kappa: float | None = None
    train_kappa: float | None = None
    mean_alpha: float | None = None
    loss: float | None = None
    confidence: float | None = None  # epochs: over-prediction needs this Wilson bound


@dataclass(frozen=True)
class Rule:
    """One registered rule: the flags it may raise, where it runs (a validation fold, an
    epoch of an inner split, a training step) and the `collapse.*` thresholds it reads.
    `check` sees the evidence, the thresholds and the flags raised before it."""

    raises: tuple[str, ...]
    paths: tuple[str, ...]
    thresholds: tuple[str, ...]
    check: Callable[[Evidence, CollapseConfig, list[Flag]], list[Flag]]


def _on_counts(
    rule: Callable[[Counts, CollapseConfig], list[Flag]],
) -> Callable[[Evidence, CollapseConfig, list[Flag]], list[Flag]]:
    return lambda e, cfg, before: rule(e.counts, cfg) if e.counts is not None else []


def _chance_rule(e: Evidence, cfg: CollapseConfig, before: list[Flag]) -> list[Flag]:
    """One finding, one flag: left out when a collapse rule already cites the kappa."""
    if e.counts is None or e.kappa is None or any(f.rule in CITES_KAPPA for f in before):
        return []
    return chance_kappa(e.kappa, cfg)


#: Every rule, in the order they run. Adding one: its function above, an entry here, and
#: its thresholds in `CollapseConfig` (declared with their ranges).
RULES: tuple[Rule, ...] = (
    Rule(("missing_class",), (FOLD, EPOCH), ("min_support",), _on_counts(missing_class)),
    Rule(
        ("absolute_cap", "chance_concentration", "dominant_class"),
        (FOLD, EPOCH),
        ("absolute_cap", "share_margin", "chance_kappa", "confidence"),
        lambda e, cfg, before: (
            concentration(e.counts, cfg, e.confidence) if e.counts is not None else []
        ),
    ),
    Rule(
        ("low_entropy",), (FOLD, EPOCH), ("entropy_ratio", "chance_kappa"), _on_counts(low_entropy)
    ),
    Rule(("chance_kappa",), (FOLD, EPOCH), ("chance_kappa",), _chance_rule),
    Rule(
        ("overfit_gap",),
        (FOLD, EPOCH),
        ("overfit_gap",),
        lambda e, cfg, before: (
            overfit_gap(e.train_kappa, e.kappa, cfg)
            if e.kappa is not None and e.train_kappa is not None
            else []
        ),
    ),
    Rule(
        ("alpha_pinned",),
        (FOLD,),
        ("alpha_pinned",),
        lambda e, cfg, before: alpha_pinned(e.mean_alpha, cfg) if e.mean_alpha is not None else [],
    ),
    Rule(
        ("nan_loss",),
        (TRAINING,),
        (),
        lambda e, cfg, before: nan_loss(e.loss) if e.loss is not None else [],
    ),
)
#: Epoch flags: the share rules need this many samples (`epoch_min_samples`) and a rule must
#: hold this many epochs (`epoch_persist`) before it is raised (`EpochFlagger`).
EPOCH_THRESHOLDS = ("epoch_min_samples", "epoch_persist")


def run_rules(path: str, evidence: Evidence, cfg: CollapseConfig) -> list[Flag]:
    """Every registered rule of `path`, in order, on one piece of evidence."""
    flags: list[Flag] = []
    for rule in RULES:
        if path in rule.paths:
            flags += rule.check(evidence, cfg, flags)
    return flags


def share_rules(c: Counts, cfg: CollapseConfig, confidence: float | None = None) -> list[Flag]:
    """The rules on class counts and kappa; `chance_kappa` is left out when a collapse rule
    already cites the chance-level kappa (one finding, one flag)."""
    return run_rules(FOLD, Evidence(c, c.kappa, confidence=confidence), cfg)


def check_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    cfg: CollapseConfig,
    kappa: float | None = None,
    train_kappa: float | None = None,
    mean_alpha: float | None = None,
) -> list[Flag]:
    """Every rule that runs on a validation fold (a branch, or a combination on it)."""
    counts = Counts.of(y_true, y_pred, kappa)
    return run_rules(FOLD, Evidence(counts, kappa, train_kappa, mean_alpha), cfg)


class EpochFlagger:
    """Epoch-level flags on an inner validation split, which is small and noisy.

    A share rule is checked only when the split has `epoch_min_samples` samples, and
    over-prediction must clear a Wilson bound. Collapse is a state, whichever rule shows it
    (a stuck model may swap its one class from epoch to epoch): the collapse flags are
    raised once collapse-level rules have held `persist` (default `epoch_persist`)
    consecutive epochs; a warning once the same rule on the same class has. Either is raised
    again only after it stopped holding. A CNN from scratch often predicts one class for its
    first 2 to 4 epochs (measured in benchmarks/collapse_flags.py), hence 5 by default.
    `raw` keeps what held each epoch, raised or not.
    """

    def __init__(self, cfg: CollapseConfig, persist: int | None = None) -> None:
        self.cfg = cfg
        self.persist = persist or cfg.epoch_persist
        self.streak: dict[tuple[str, str], int] = {}
        self.collapse_streak = 0
        self.raw: list[list[Flag]] = []

    def step(
        self, y_true: np.ndarray, y_pred: np.ndarray, kappa: float, train_kappa: float
    ) -> list[Flag]:
        cfg = self.cfg
        counts = Counts.of(y_true, y_pred, kappa) if len(y_true) >= cfg.epoch_min_samples else None
        held = run_rules(
            EPOCH, Evidence(counts, kappa, train_kappa, confidence=cfg.confidence), cfg
        )
        self.raw.append(held)

        def raise_(flag: Flag) -> Flag:
            detail = f"{flag.detail}; {self.persist} epochs running, n {len(y_true)}"
            return Flag(flag.rule, flag.level, detail)

        collapsed = [f for f in held if f.level == COLLAPSE]
        self.collapse_streak = self.collapse_streak + 1 if collapsed else 0
        raised = [raise_(f) for f in collapsed] if self.collapse_streak == self.persist else []
        warnings = {(f.rule, f.detail.split(" ", 1)[0]): f for f in held if f.level == WARNING}
        self.streak = {k: self.streak.get(k, 0) + 1 for k in warnings}
        raised += [raise_(f) for k, f in warnings.items() if self.streak[k] == self.persist]
        return raised


SCALE_NAMES = {"kappa": "unweighted kappa", "quadratic_kappa": "quadratic kappa"}


def verdict(
    mean: dict[str, float],
    findings: list[dict[str, Any]],
    cfg: CriteriaConfig,
    combo: list[str],
    versus: dict[str, Any],
    has_metadata: bool,
    n_folds: int,
    rows: tuple[int, str] | None = None,
) -> Verdict:
    """The seed note's success criteria for one combination, each with its numbers, the same
    tests for every combination.

    Thresholds apply to `mean[cfg.metric]` (quadratic kappa by default: the seed note's
    scale). `versus` holds paired differences (combination minus a branch alone, per fold, on
    the same rows): "beats" holds only when the interval lies above zero. Expected asks a
    combination of several modalities to beat each of its image branches; ideal asks every
    combination but metadata alone to beat metadata alone (for metadata alone there is no
    fusion to judge: not applicable). `findings` are the folds with a class collapse, each
    counted once. Fewer than `cfg.min_folds` folds make the verdict exploratory. `rows`:
    (n, which rows) the mean is over, said beside each threshold.
    """
    metric = cfg.metric
    scale = SCALE_NAMES[metric]
    train_key = "train_kappa" if metric == "kappa" else f"train_{metric}"
    k = mean[metric]
    gap = mean.get(train_key, math.nan) - k
    collapse = _criterion("minimum", "no class collapse", not findings, len(findings))
    collapse["folds"] = n_folds

    def threshold(tier: str, name: str, ok: bool) -> dict[str, Any]:
        out = _criterion(tier, name, ok, k)
        if rows is not None:
            out["n"], out["rows"] = rows
        return out

    criteria = [
        threshold("minimum", f"{scale} > {cfg.minimum_kappa:.2f}", k > cfg.minimum_kappa),
        collapse,
        threshold("expected", f"{scale} >= {cfg.expected_kappa:.2f}", k >= cfg.expected_kappa),
        _criterion(
            "expected",
            f"train/validation gap < {cfg.max_train_gap:.2f}",
            gap < cfg.max_train_gap,
            gap,
        ),
    ]
    for branch, diff in (versus.get("images") or {}).items():
        criteria.append(_paired_criterion("expected", f"beats {branch} alone", diff))
    alone = combo == [METADATA_NAME]
    if alone:
        criteria.append(
            {
                "tier": "ideal",
                "name": "beats metadata-only",
                "ok": None,
                "value": None,
                "note": "not applicable: metadata alone, no fusion to judge",
            }
        )
    else:
        criteria.append(
            threshold("ideal", f"{scale} >= {cfg.ideal_kappa:.2f}", k >= cfg.ideal_kappa)
        )
        if versus.get("metadata") is not None:
            criteria.append(_paired_criterion("ideal", "beats metadata-only", versus["metadata"]))
        else:
            note = (
                "not measured: the run has no metadata branch"
                if not has_metadata
                else ("not measured: no fold has paired scores")
            )
            criteria.append(
                {
                    "tier": "ideal",
                    "name": "beats metadata-only",
                    "ok": False,
                    "value": None,
                    "note": note,
                }
            )
    passed: dict[str, bool] = {}
    so_far = True
    for tier in ("minimum", "expected", "ideal"):
        so_far = so_far and all(c["ok"] for c in criteria if c["tier"] == tier)
        passed[tier] = so_far
    design = Design(
        folds=n_folds,
        min_folds=cfg.min_folds,
        exploratory=n_folds < cfg.min_folds,
        min_difference=cfg.min_difference,
    )
    return Verdict(
        minimum=passed["minimum"],
        expected=passed["expected"],
        ideal=None if alone else passed["ideal"],
        metric=metric,
        criteria=criteria,
        design=design,
    )


def tier_word(v: Mapping[str, Any], tier: str) -> str:
    """`yes`, `no` or `n/a` (ideal for metadata alone) for one tier of a verdict."""
    value = v.get(tier)
    return "n/a" if value is None else "yes" if value else "no"


def criterion_mark(c: dict[str, Any]) -> str:
    """`ok`, `FAIL` or `n/a` for one criterion."""
    return "n/a" if c.get("ok") is None else "ok" if c["ok"] else "FAIL"


def design_text(v: Mapping[str, Any]) -> str:
    """The verdict's standing: `exploratory (5 folds < 10)` or `confirmatory (15 folds)`,
    and `not confirmed on later patients` when a hold-out missed a threshold."""
    design = v.get("design")
    if not design:
        return ""
    n, least = design["folds"], design["min_folds"]
    text = f"exploratory ({n} folds < {least})" if design["exploratory"] else f"{n} folds"
    holdout = v.get("holdout")
    if holdout is not None and not holdout.get("confirmed", True):
        text += "; not confirmed on later patients"
    return text


def verdict_headline(v: Mapping[str, Any]) -> str:
    """`minimum yes, expected no, ideal n/a; exploratory (5 folds < 10)`."""
    tiers = ", ".join(f"{t} {tier_word(v, t)}" for t in ("minimum", "expected", "ideal"))
    design = design_text(v)
    return f"{tiers}; {design}" if design else tiers


def caveat_texts(v: Mapping[str, Any]) -> list[str]:
    """The caveats a verdict carries, one line each."""
    return [str(c["text"]) for c in v.get("caveats") or []]


def _criterion(tier: str, name: str, ok: bool, value: float) -> dict[str, Any]:
    number = value if isinstance(value, int) else round(float(value), 4)
    return {"tier": tier, "name": name, "ok": bool(ok), "value": number}


def _paired_criterion(tier: str, name: str, diff: dict[str, Any]) -> dict[str, Any]:
    """A "beats" criterion: passes only when the paired interval lies above zero; with the
    smallest difference the design detects (`half_width`, `mdd` at `power`)."""
    low, high = diff["ci95"]
    ok = bool(diff["distinguishable"] and diff["mean_difference"] > 0)
    out = _criterion(tier, name, ok, diff["mean_difference"])
    out.update(
        paired=True,
        versus=diff.get("branch"),
        interval=[_round(low), _round(high)],
        folds=diff["folds"],
        confidence=diff.get("confidence", 0.95),
        outcome=diff.get("outcome", "beats" if ok else "not distinguishable"),
    )
    if "mdd" in diff:
        out.update(
            half_width=_round(diff["half_width"]), mdd=_round(diff["mdd"]), power=diff["power"]
        )
    return out


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def criterion_value(criterion: dict[str, Any]) -> str:
    """A criterion's number as text: counts as integers, kappas with three decimals, a paired
    difference with its interval and outcome."""
    value = criterion["value"]
    if value is None:
        return str(criterion.get("note", "-"))
    if criterion.get("paired"):
        low, high = criterion["interval"]
        ci = (
            "one fold: no interval"
            if low is None or high is None
            else f"CI {low:+.3f} to {high:+.3f}"
        )
        versus = f" vs {criterion['versus']}" if criterion.get("versus") else ""
        mdd = criterion.get("mdd")
        power = (
            f"; detects >= {mdd:.3f} ({criterion.get('power', 0.8):.0%} power)"
            if mdd is not None
            else ""
        )
        return (
            f"{value:+.3f}{versus}, {criterion.get('confidence', 0.95):.0%} {ci}, "
            f"{criterion['folds']} folds paired: {criterion['outcome']}{power}"
        )
    if criterion.get("name") == "no class collapse" and criterion.get("folds"):
        return f"{value} of {criterion['folds']} folds"
    if isinstance(criterion.get("n"), int):  # a threshold: the mean, and over which rows
        return f"{value:.3f} (n={criterion['n']}, {criterion.get('rows', 'samples')})"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
