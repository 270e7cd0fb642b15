"""Fold metrics: both kappas (always labelled), accuracy, F1s, confusion, class shares."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.records import Clinical, Kappas, Scores

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


#: Confidence bins of the reliability diagram (the predicted class's probability).
RELIABILITY_BINS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def clinical_scores(y_true: np.ndarray, proba: np.ndarray) -> Clinical:
    """What a clinician asks first, per class one-vs-rest: sensitivity, specificity and ROC
    AUC (None where a class is absent or alone), and the calibration of the probabilities:
    the multi-class Brier score (0 perfect, 2 worst; a uniform guess over 3 classes 0.67)
    and a reliability table (per confidence bin: its n, mean confidence and accuracy)."""
    y_pred = proba.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, labels=LABELS)
    total = cm.sum()
    sensitivity: dict[str, float | None] = {}
    specificity: dict[str, float | None] = {}
    auc: dict[str, float | None] = {}
    for i, c in enumerate(CLASSES):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        sensitivity[c] = float(tp / (tp + fn)) if tp + fn else None
        specificity[c] = float(tn / (tn + fp)) if tn + fp else None
        positive = y_true == i
        both = 0 < positive.sum() < len(y_true)
        auc[c] = float(roc_auc_score(positive, proba[:, i])) if both else None
    onehot = np.eye(len(CLASSES))[y_true] if len(y_true) else np.zeros((0, len(CLASSES)))
    brier = float(((proba - onehot) ** 2).sum(axis=1).mean()) if len(y_true) else None
    confidence = proba.max(axis=1) if len(y_true) else np.zeros(0)
    reliability: list[list[float]] = []
    edges = RELIABILITY_BINS
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = k == len(edges) - 2
        inside = (confidence >= low) & ((confidence <= high) if last else (confidence < high))
        n = int(inside.sum())
        if n:
            hits = float((y_pred[inside] == y_true[inside]).mean())
            reliability.append([low, high, n, float(confidence[inside].mean()), hits])
    return Clinical(
        sensitivity=sensitivity,
        specificity=specificity,
        roc_auc=auc,
        brier=brier,
        reliability=reliability,
    )


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
        **clinical_scores(y_true, proba),
    )


def both_kappas(y_true: np.ndarray, y_pred: np.ndarray) -> Kappas:
    """Unweighted and quadratic kappa of one set of predictions."""
    return Kappas(kappa=kappa(y_true, y_pred), quadratic_kappa=quadratic_kappa(y_true, y_pred))
