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


class Metrics(TypedDict):
    """One branch or combination on one fold (validation rows with an input)."""

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
    flags: list[dict[str, Any]]
    train_rows: NotRequired[str]  # on which rows the training kappas are measured


class PairedScores(TypedDict):
    """A combination and its branches scored on the same rows."""

    n: int
    fused: Kappas
    branches: dict[str, Kappas]


class CombinationResult(Metrics):
    """A fused combination on one fold."""

    modalities: list[str]
    paired: PairedScores
    fusion: dict[str, Any]
    mean_alpha: NotRequired[float]
    strategies: NotRequired[list[dict[str, Any]]]  # every fusion of `fusion.compare`
    reference: NotRequired[dict[str, Any]]  # it and the common reference on common rows
    interval: NotRequired[list[float] | None]  # the hold-out's patient-bootstrap interval


class FoldResult(TypedDict):
    """Every branch and combination of one outer fold (the `fold_finished` event's body)."""

    fold: int
    repeat: int
    fold_kind: str
    n_train: int
    n_val: int
    branches: dict[str, Metrics]
    combinations: list[CombinationResult]
    radar: NotRequired[dict[str, Any]]
    feature_comparison: NotRequired[dict[str, Any]]


class CombinationSummary(TypedDict):
    """One combination over the run's cross-validation folds, with its verdict."""

    modalities: list[str]
    fusion: dict[str, Any]
    folds: list[dict[str, Any]]
    mean: dict[str, float]
    std: dict[str, float]
    n_folds: int
    repeats: list[dict[str, Any]]
    paired: dict[str, Any] | None
    verdict: dict[str, Any]
    strategies: NotRequired[dict[str, Any]]  # every fusion of `fusion.compare`, side by side


class Summary(TypedDict):
    """summary.json."""

    run_id: str
    status: str
    metric: str
    cv: dict[str, Any]
    combinations: list[CombinationSummary]
    branches: list[dict[str, Any]]
    selection: NotRequired[dict[str, Any]]
    holdout: NotRequired[dict[str, Any]]
    radar: NotRequired[dict[str, Any]]
    feature_comparison: NotRequired[dict[str, Any]]


def combination_of(fold: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Combination `index` of a fold result, with the fold's number, repeat and sizes."""
    entry = {k: v for k, v in fold["combinations"][index].items() if k != "modalities"}
    keys = ("fold", "repeat", "n_train", "n_val")
    return {**{k: fold[k] for k in keys if k in fold}, **entry}
