"""Fold metrics: both kappas (always labelled), accuracy, F1s, confusion, class shares."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.records import Kappas, Scores

LABELS = list(range(len(CLASSES)))
SUMMARY_KEYS = ("kappa", "quadratic_kappa", "accuracy", "macro_f1", "weighted_f1")


def kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa, unweighted; 0 when undefined (a single class everywhere)."""
    if len(y_true) == 0:
        return float("nan")
    value = cohen_kappa_score(y_true, y_pred, labels=LABELS)
    return 0.0 if np.isnan(value) else float(value)


def quadratic_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa with quadratic weights (I < P < R are ordered)."""
    if len(y_true) == 0:
        return float("nan")
    value = cohen_kappa_score(y_true, y_pred, labels=LABELS, weights="quadratic")
    return 0.0 if np.isnan(value) else float(value)


def shares(y: np.ndarray) -> dict[str, float]:
    """The share of each class among `y`."""
    counts = np.bincount(y, minlength=len(CLASSES)) / max(1, len(y))
    return {c: float(counts[i]) for i, c in enumerate(CLASSES)}


def fold_metrics(
    y_true: np.ndarray, proba: np.ndarray, y_train: np.ndarray, train_proba: np.ndarray
) -> Scores:
    """All metrics of one fold from validation and (in-sample or OOB) training probabilities."""
    y_pred = proba.argmax(axis=1)
    per_class = f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0)
    return Scores(
        n=int(len(y_true)),
        kappa=kappa(y_true, y_pred),
        quadratic_kappa=quadratic_kappa(y_true, y_pred),
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", labels=LABELS, zero_division=0)),
        weighted_f1=float(
            f1_score(y_true, y_pred, average="weighted", labels=LABELS, zero_division=0)
        ),
        f1={c: float(per_class[i]) for i, c in enumerate(CLASSES)},
        train_kappa=kappa(y_train, train_proba.argmax(axis=1)),
        train_quadratic_kappa=quadratic_kappa(y_train, train_proba.argmax(axis=1)),
        predicted_share=shares(y_pred),
        true_share=shares(y_true),
        confusion=confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
    )


def both_kappas(y_true: np.ndarray, y_pred: np.ndarray) -> Kappas:
    """Unweighted and quadratic kappa of one set of predictions."""
    return Kappas(kappa=kappa(y_true, y_pred), quadratic_kappa=quadratic_kappa(y_true, y_pred))
