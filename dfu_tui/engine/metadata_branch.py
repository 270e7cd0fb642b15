"""The metadata branch: a scikit-learn Pipeline (typed columns, imputation, one-hot) + forest."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from dfu_tui.config import MetadataModelConfig
from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import inner_folds


def build_metadata_branch(frame: pd.DataFrame, cfg: MetadataModelConfig, seed: int) -> Pipeline:
    """An unfitted pipeline for the columns of `frame`, typed from the data.

    Numeric columns: median imputation with missing-value indicators. Text columns: the
    most frequent value, then one-hot encoding that ignores values unseen in training.
    """
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    text = [c for c in frame.columns if c not in numeric]
    transformer = ColumnTransformer(
        [
            (
                "numeric",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                numeric,
            ),
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                text,
            ),
        ],
        verbose_feature_names_out=False,
    )
    forest = RandomForestClassifier(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth or None,
        min_samples_leaf=cfg.min_samples_leaf,
        max_features=cfg.max_features if cfg.max_features != "none" else None,
        class_weight=None if cfg.class_weight == "none" else cfg.class_weight,
        n_jobs=cfg.n_jobs,
        random_state=seed,
        oob_score=True,
    )
    return Pipeline([("columns", transformer), ("forest", forest)])


def _proba(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Class probabilities in CLASSES order, whatever classes the model saw."""
    return _reorder(model.predict_proba(frame), model.classes_)


def _fit(model: Pipeline, frame: pd.DataFrame, labels: np.ndarray) -> Pipeline:
    with warnings.catch_warnings():
        # Few trees leave some rows without out-of-bag votes; those get uniform probabilities.
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        return model.fit(frame, labels)


def train_metadata_branch(
    frame: pd.DataFrame,
    labels: np.ndarray,
    groups: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    cfg: MetadataModelConfig,
    seed: int,
    inner: int = 0,
) -> BranchOutput:
    """Fit on the training rows only; predict the validation rows.

    Returns validation probabilities, training probabilities (out-of-bag, since a forest's
    in-sample fit is perfect by construction) and, when `inner` > 1, out-of-fold
    probabilities of the training rows from `inner` patient-grouped inner folds.
    """
    model = build_metadata_branch(frame, cfg, seed)
    _fit(model, frame.iloc[train], labels[train])
    train_proba = model.named_steps["forest"].oob_decision_function_
    train_proba = np.nan_to_num(_reorder(train_proba, model.classes_), nan=1 / len(CLASSES))
    oof = None
    if inner > 1:
        oof = np.full((len(train), len(CLASSES)), np.nan)
        for tr, va in inner_folds(labels[train], groups[train], inner, seed):
            sub = clone(model)
            _fit(sub, frame.iloc[train[tr]], labels[train[tr]])
            oof[va] = _proba(sub, frame.iloc[train[va]])
    return BranchOutput(_proba(model, frame.iloc[val]), train_proba, oof, {"model": model})


def _reorder(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    out = np.zeros((len(proba), len(CLASSES)))
    for j, cls in enumerate(classes):
        out[:, int(cls)] = proba[:, j]
    return out


#: Seed offset between the forests a comparison averages (seed, seed + step, ...).
SEED_STEP = 7919


def seed_averaged_proba(
    frame: pd.DataFrame,
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    cfg: MetadataModelConfig,
    seed: int,
    seeds: int,
    first: np.ndarray | None = None,
) -> np.ndarray:
    """Validation probabilities averaged over `seeds` forests of differently seeded trees
    (`first`: the probabilities of the forest with `seed` itself, when already fitted).

    Different columns grow different trees even with one `random_state`, so a with/without
    comparison of one forest each measures forest noise beside the columns; averaging each
    side over several forests shrinks that noise (measured in benchmarks/forest_seeds.py).
    """
    total = np.zeros((len(val), len(CLASSES)))
    for s in range(seeds):
        if s == 0 and first is not None:
            total += first
            continue
        model = build_metadata_branch(frame, cfg, seed + SEED_STEP * s)
        model.set_params(forest__oob_score=False)
        _fit(model, frame.iloc[train], labels[train])
        total += _proba(model, frame.iloc[val])
    return total / seeds


def seed_null(
    frame: pd.DataFrame,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    cfg: MetadataModelConfig,
    seed: int,
    seeds: int,
    quadratic: bool = True,
) -> tuple[list[float], list[float]]:
    """The same columns on both sides: per fold, the kappa of `seeds` forests averaged with
    seeds from `seed`, and of `seeds` other forests (seeds after those). Their paired
    difference is what a with/without comparison shows when the columns make no
    difference."""
    from dfu_tui.engine.curve import cohen_kappa

    a, b = [], []
    for k, (train, val) in enumerate(folds):
        base = seed + 1000 * k
        pa = seed_averaged_proba(frame, labels, train, val, cfg, base, seeds)
        pb = seed_averaged_proba(frame, labels, train, val, cfg, base + SEED_STEP * seeds, seeds)
        a.append(cohen_kappa(labels[val], pa.argmax(axis=1), quadratic=quadratic))
        b.append(cohen_kappa(labels[val], pb.argmax(axis=1), quadratic=quadratic))
    return a, b
