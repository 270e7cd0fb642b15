"""Patient-grouped, label-stratified folds: no patient in both training and validation."""

from __future__ import annotations

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
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, val = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return train, val


def inner_folds(
    labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped folds inside a training fold, for out-of-fold probabilities."""
    smallest = min(len(np.unique(groups[labels == i])) for i in np.unique(labels))
    splitter = StratifiedGroupKFold(
        n_splits=max(2, min(n_folds, smallest)), shuffle=True, random_state=seed
    )
    return list(splitter.split(np.zeros(len(labels)), labels, groups))
