"""Patient-grouped, label-stratified folds: no patient in both training and validation.

scikit-learn is imported where folds are made, so the dashboard can import fold labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfu_tui.config import Config
from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.records import CASEMIX, CASEMIX_FOLDS, CV, HOLDOUT, fold_label
from dfu_tui.errors import InputError

#: A repeat's seed is the configured seed plus this times (repeat - 1).
REPEAT_SEED_STEP = 1000


@dataclass(frozen=True)
class Fold:
    """One outer fold: sample rows for training and for validation.

    Folds are numbered from 1 across repeats (repeat r's fold k is number (r-1)*K + k), so a
    task id `fold{number}-{branch}` names one (repeat, fold, branch); the temporal hold-out,
    when there is one, comes last with kind "holdout" and repeat 0.
    """

    number: int
    train: np.ndarray
    val: np.ndarray
    repeat: int = 1
    kind: str = CV

    def label(self, folds_per_repeat: int, repeats: int) -> str:
        return fold_label(self.number, self.kind, folds_per_repeat, repeats)


def check_fold_count(labels: np.ndarray, groups: np.ndarray, n_folds: int, where: str) -> None:
    """Every class needs at least one patient per validation fold."""
    problems = []
    for i, name in enumerate(CLASSES):
        n = len(np.unique(groups[labels == i]))
        if n < n_folds:
            problems.append(
                f"{where}: class {name} has {n} patient(s), fewer than {n_folds} folds; "
                "use fewer folds or more data"
            )
    if problems:
        raise InputError(problems)


def make_folds(labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> list[Fold]:
    """Seeded StratifiedGroupKFold; raises InputError when a validation fold lacks a class."""
    from sklearn.model_selection import StratifiedGroupKFold

    check_fold_count(labels, groups, n_folds, "cv.folds")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = []
    for k, (train, val) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups), 1):
        missing = [CLASSES[i] for i in range(len(CLASSES)) if not np.any(labels[val] == i)]
        if missing:
            raise InputError(
                f"cv.folds: validation fold {k} has no sample of class {', '.join(missing)}; "
                "use fewer folds or more data"
            )
        folds.append(Fold(k, np.sort(train), np.sort(val)))
    return folds


def inner_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A patient-grouped split of a training fold into (inner train, inner validation) positions.

    Used for early stopping and best-epoch choice, never the reported fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, round(1 / fraction))
    n_splits = min(n_splits, *(len(np.unique(groups[labels == i])) for i in np.unique(labels)))
    n_splits = max(2, n_splits)
    classes = set(np.unique(labels))
    fallback = None
    for attempt in range(10):  # prefer a split with every class on both sides
        splitter = StratifiedGroupKFold(
            n_splits=n_splits, shuffle=True, random_state=seed + attempt
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            # Every split of the splitter, not just its first: with one patient in a class,
            # the first split can always put that patient on the validation side.
            splits = list(splitter.split(np.zeros(len(labels)), labels, groups))
        for train, val in splits:
            if set(labels[train]) == classes:
                if set(labels[val]) == classes:
                    return train, val
                fallback = fallback or (train, val)
    if fallback is None:
        raise InputError("too few patients per class for an inner validation split of a fold")
    return fallback


def inner_folds(
    labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped folds inside a training fold, for out-of-fold probabilities."""
    from sklearn.model_selection import StratifiedGroupKFold

    smallest = min(len(np.unique(groups[labels == i])) for i in np.unique(labels))
    splitter = StratifiedGroupKFold(
        n_splits=max(2, min(n_folds, smallest)), shuffle=True, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return list(splitter.split(np.zeros(len(labels)), labels, groups))


def temporal_holdout(order: np.ndarray, groups: np.ndarray, fraction: float) -> np.ndarray:
    """A mask of the samples of the latest-enrolled patients: the last `fraction` of patients
    ordered by their earliest `order` value (ties by patient id)."""
    patients = np.unique(groups)
    first = {p: float(np.nanmin(order[groups == p])) for p in patients}
    ranked = sorted(patients, key=lambda p: (first[p], p))
    n_out = max(1, round(len(ranked) * fraction))
    held = set(ranked[-n_out:])
    return np.array([g in held for g in groups])


def make_cv(
    labels: np.ndarray,
    groups: np.ndarray,
    n_folds: int,
    seed: int,
    repeats: int = 1,
    holdout: np.ndarray | None = None,
) -> list[Fold]:
    """`repeats` differently seeded grouped K-fold splits (repeat 1 uses `seed` itself), on the
    samples outside `holdout`; then the hold-out as one fold trained on all the rest; then its
    case-mix folds: the hold-out's patients split in `CASEMIX_FOLDS` patient groups, each
    scored by a model trained on every other patient (earlier and later alike), so the
    hold-out's gap from CV splits into case mix (these patients are harder) and era."""
    rest = np.flatnonzero(~holdout) if holdout is not None else np.arange(len(labels))
    folds: list[Fold] = []
    for r in range(1, repeats + 1):
        split = make_folds(labels[rest], groups[rest], n_folds, seed + REPEAT_SEED_STEP * (r - 1))
        for f in split:
            folds.append(Fold(len(folds) + 1, rest[f.train], rest[f.val], repeat=r))
    if holdout is not None:
        held = np.flatnonzero(holdout)
        folds.append(Fold(len(folds) + 1, rest, held, repeat=0, kind=HOLDOUT))
        for val in casemix_splits(labels, groups, held, seed):
            train = np.setdiff1d(np.arange(len(labels)), val)
            folds.append(Fold(len(folds) + 1, train, val, repeat=0, kind=CASEMIX))
    return folds


def casemix_splits(
    labels: np.ndarray, groups: np.ndarray, held: np.ndarray, seed: int
) -> list[np.ndarray]:
    """The held-out rows in `CASEMIX_FOLDS` patient-grouped parts (stratified when every
    class has enough patients), each sorted."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n = min(CASEMIX_FOLDS, len(np.unique(groups[held])))
    if n < 2:
        return [np.sort(held)]
    y, g = labels[held], groups[held]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        try:
            splits = list(
                StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed).split(
                    np.zeros(len(y)), y, g
                )
            )
        except ValueError:
            splits = list(GroupKFold(n_splits=n).split(np.zeros(len(y)), y, g))
    return [np.sort(held[val]) for _, val in splits]


def run_folds(cfg: Config, table: Any) -> list[Fold]:
    """The run's outer folds: repeated grouped K-fold, then the temporal hold-out if asked."""
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
