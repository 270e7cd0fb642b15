"""The typed records the engine returns: one fold's scores and the run's summary.

They are JSON documents (the `fold_finished` event and summary.json carry them as they are),
so they are `TypedDict`s: readers written against these keys are checked by mypy, and a log
written by an earlier version still reads as the same dictionaries.
"""

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

CV, HOLDOUT, CASEMIX = "cv", "holdout", "casemix"  # the kinds of outer fold
#: Case-mix folds of a temporal hold-out: its patients scored by grouped CV on all others.
CASEMIX_FOLDS = 2


def fold_label(number: int, kind: str, folds_per_repeat: int, repeats: int) -> str:
    """How a fold is named on screen: `fold 3`, `r2 fold 3` with repeats, `hold-out`, or
    `case-mix 1` (the hold-out's patients scored by grouped CV on every other patient)."""
    if kind == HOLDOUT:
        return "hold-out"
    if kind == CASEMIX:
        return f"case-mix {number - max(1, folds_per_repeat) * max(1, repeats) - 1}"
    if repeats <= 1 or folds_per_repeat <= 0:
        return f"fold {number}"
    repeat, within = divmod(number - 1, folds_per_repeat)
    return f"r{repeat + 1} fold {within + 1}"


class Kappas(TypedDict):
    """Both kappas of one set of predictions."""

    kappa: float
    quadratic_kappa: float


class Clinical(TypedDict):
    """Per class one-vs-rest sensitivity, specificity and ROC AUC (None where undefined),
    the multi-class Brier score, and the reliability table: per confidence bin [low, high,
    n, mean confidence, accuracy]."""

    sensitivity: dict[str, float | None]
    specificity: dict[str, float | None]
    roc_auc: dict[str, float | None]
    brier: float | None
    reliability: list[list[float]]


class Scores(TypedDict):
    """Every score of one set of validation predictions and its training kappas (runs
    logged before the clinical scores lack them)."""

    n: int
    kappa: float
    quadratic_kappa: float
    accuracy: float
    macro_f1: float
    weighted_f1: float
    f1: dict[str, float]
    train_kappa: float
    train_quadratic_kappa: float
    predicted_share: dict[str, float]
    true_share: dict[str, float]
    confusion: list[list[int]]
    sensitivity: NotRequired[dict[str, float | None]]
    specificity: NotRequired[dict[str, float | None]]
    roc_auc: NotRequired[dict[str, float | None]]
    brier: NotRequired[float | None]
    reliability: NotRequired[list[list[float]]]


def scores_of(m: Scores) -> Scores:
    """Just the `Scores` of a richer record (its flags, fusion and the like left out)."""
    out = Scores(
        n=m["n"],
        kappa=m["kappa"],
        quadratic_kappa=m["quadratic_kappa"],
        accuracy=m["accuracy"],
        macro_f1=m["macro_f1"],
        weighted_f1=m["weighted_f1"],
        f1=m["f1"],
        train_kappa=m["train_kappa"],
        train_quadratic_kappa=m["train_quadratic_kappa"],
        predicted_share=m["predicted_share"],
        true_share=m["true_share"],
        confusion=m["confusion"],
    )
    for key in ("sensitivity", "specificity", "roc_auc"):
        if key in m:
            out[key] = m[key]
    if "brier" in m:
        out["brier"] = m["brier"]
    if "reliability" in m:
        out["reliability"] = m["reliability"]
    return out


class Metrics(Scores):
    """One branch or combination on one fold (validation rows with an input)."""

    flags: list[dict[str, Any]]
    train_rows: NotRequired[str]  # on which rows the training kappas are measured


class FusionInfo(TypedDict):
    """How a combination was fused on a fold: its strategy and the weights it used."""

    strategy: str
    weights: dict[str, float]
    name: NotRequired[str]  # a fusion of `fusion.compare` named apart from its strategy
    grid_step: NotRequired[float]  # tuned: the weight grid's step


class FusedMetrics(Metrics):
    """One fusion of a combination on one fold."""

    fusion: FusionInfo
    mean_alpha: NotRequired[float]


class PairedScores(TypedDict):
    """A combination and its branches scored on the same rows."""

    n: int
    fused: Kappas
    branches: dict[str, Kappas]


class ReferenceScores(TypedDict):
    """A combination and the run's common reference on their common rows."""

    name: str
    n: int
    fused: Kappas
    reference: Kappas


class StrategyPaired(TypedDict):
    n: int
    strategy: Kappas
    reference: Kappas


class StrategyRow(Scores):
    """One fusion of `fusion.compare` on a fold, and it and the reference on common rows."""

    name: str
    strategy: str
    weights: dict[str, float]
    flags: list[dict[str, Any]]
    paired: StrategyPaired
    mean_alpha: NotRequired[float]


class CombinationResult(FusedMetrics):
    """A fused combination on one fold."""

    modalities: list[str]
    paired: PairedScores
    strategies: NotRequired[list[StrategyRow]]  # every fusion of `fusion.compare`
    reference: NotRequired[ReferenceScores]  # it and the common reference on common rows
    interval: NotRequired[list[float] | None]  # the hold-out's patient-bootstrap interval


class RadarFold(TypedDict):
    """The leakage radar on one fold: each column's permutation importance and
    single-feature kappa, and the flags they raise."""

    baseline_kappa: float
    n_validation: int
    n_training: int
    repeats: int
    features: list[dict[str, Any]]
    flags: list[dict[str, Any]]


class FeatureComparisonFold(TypedDict):
    """Each combination with metadata scored with and without a feature group, one fold."""

    group: str
    n: int
    forest_seeds: int
    rows: list[dict[str, Any]]


class FoldResult(TypedDict):
    """Every branch and combination of one outer fold (the `fold_finished` event's body)."""

    fold: int
    repeat: int
    fold_kind: str
    n_train: int
    n_val: int
    branches: dict[str, Metrics]
    combinations: list[CombinationResult]
    radar: NotRequired[RadarFold]
    feature_comparison: NotRequired[FeatureComparisonFold]


def fold_result(body: Mapping[str, Any]) -> FoldResult:
    """A fold result from a `fold_finished` event or a stored document already validated
    (`runs.records.valid`): the fold's own fields, none of the event's."""
    out = FoldResult(
        fold=int(body["fold"]),
        repeat=int(body.get("repeat", 1)),
        fold_kind=str(body.get("fold_kind", CV)),
        n_train=int(body.get("n_train", 0)),
        n_val=int(body.get("n_val", 0)),
        branches=body["branches"],
        combinations=body["combinations"],
    )
    if "radar" in body:
        out["radar"] = body["radar"]
    if "feature_comparison" in body:
        out["feature_comparison"] = body["feature_comparison"]
    return out


class Criterion(TypedDict):
    """One success criterion of a verdict with its numbers."""

    tier: str  # "minimum", "expected" or "ideal"
    name: str
    ok: bool | None
    value: float | int | None
    note: NotRequired[str]
    paired: NotRequired[bool]
    versus: NotRequired[str | None]
    folds: NotRequired[int]
    confidence: NotRequired[float]
    n: NotRequired[int]  # a threshold: the samples its mean is over
    rows: NotRequired[str]  # ... and which ones


class Design(TypedDict):
    """What the verdict's design can tell: folds against the minimum for a confirmatory one."""

    folds: int
    min_folds: int
    exploratory: bool
    min_difference: float


class Verdict(TypedDict):
    """The seed note's success criteria for one combination, tier by tier."""

    minimum: bool
    expected: bool
    ideal: bool | None  # None: n/a (metadata alone)
    metric: str
    criteria: list[dict[str, Any]]
    design: Design
    caveats: NotRequired[list[dict[str, Any]]]
    holdout: NotRequired[dict[str, Any]]


class Judged(TypedDict):
    """A combination over its cross-validation folds: means, paired scores and verdict."""

    mean: dict[str, float]
    std: dict[str, float]
    n_folds: int
    repeats: list[dict[str, Any]]
    paired: dict[str, Any] | None
    reference: dict[str, Any] | None
    verdict: Verdict


class CombinationSummary(Judged):
    """One combination over the run's cross-validation folds, with its verdict."""

    modalities: list[str]
    fusion: dict[str, Any]
    folds: list[dict[str, Any]]
    strategies: NotRequired[dict[str, Any]]  # every fusion of `fusion.compare`, side by side


class RadarSummary(TypedDict):
    """The radar over the run's folds: each column's mean importance, and every flag."""

    folds: int
    features: list[dict[str, Any]]
    flags: list[dict[str, Any]]


class FeatureComparison(TypedDict):
    """The with/without comparison of a feature group over the run's folds."""

    group: str
    samples: int
    forest_seeds: int
    rows: list[dict[str, Any]]


class RunCV(TypedDict):
    folds: int
    repeats: int
    strategy: str
    folds_done: int
    interval: str


class Summary(TypedDict):
    """summary.json."""

    run_id: str
    status: str
    metric: str
    cv: RunCV
    combinations: list[CombinationSummary]
    branches: list[dict[str, Any]]
    selection: NotRequired[dict[str, Any]]
    holdout: NotRequired[dict[str, Any]]
    radar: NotRequired[RadarSummary]
    feature_comparison: NotRequired[FeatureComparison]


def figure(m: Mapping[str, Any], key: str) -> float | None:
    """One named figure of a record (a score chosen at run time: the criteria's scale),
    None when it has none."""
    value = m.get(key)
    return None if value is None else float(value)


def combination_of(fold: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Combination `index` of a fold result, with the fold's number, repeat and sizes."""
    entry = {k: v for k, v in fold["combinations"][index].items() if k != "modalities"}
    keys = ("fold", "repeat", "n_train", "n_val")
    return {**{k: fold[k] for k in keys if k in fold}, **entry}
