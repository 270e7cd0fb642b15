"""Patient-grouped, label-stratified folds: no patient in both training and validation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from dfu_tui.data.schema import CLASSES
from dfu_tui.errors import InputError


@dataclass(frozen=True)
class Fold:
    """One outer fold: sample rows for training and for validation (numbered from 1)."""

    number: int
    train: np.ndarray
    val: np.ndarray


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
    smallest = min(len(np.unique(groups[labels == i])) for i in np.unique(labels))
    splitter = StratifiedGroupKFold(
        n_splits=max(2, min(n_folds, smallest)), shuffle=True, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return list(splitter.split(np.zeros(len(labels)), labels, groups))
