"""The final model: each branch of a chosen combination trained on every patient, and its
predictions for new samples. No fold is left for early stopping, so an image branch trains
for a fixed number of epochs (the run's median best epoch, chosen by the caller)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dfu_tui.config import ImageModelConfig, MetadataModelConfig
from dfu_tui.data.schema import CLASSES


def fit_metadata(
    frame: pd.DataFrame, labels: np.ndarray, cfg: MetadataModelConfig, seed: int
) -> Any:
    """The metadata branch's pipeline (imputation, encoding, forest) fitted on every row."""
    from dfu_tui.engine.metadata_branch import _fit, build_metadata_branch

    return _fit(build_metadata_branch(frame, cfg, seed), frame, labels)


def metadata_proba(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Class probabilities (in CLASSES order) of the fitted metadata pipeline."""
    from dfu_tui.engine.metadata_branch import _proba

    return _proba(model, frame)


def fit_image(
    modality: str,
    crops: np.ndarray,
    sample_index: np.ndarray,
    labels: np.ndarray,
    cfg: ImageModelConfig,
    seed: int,
    epochs: int,
    warm: bool = False,
) -> Any:
    """An image branch (a Keras model) trained on every crop for `epochs` epochs, with the
    same balanced class weights as in cross-validation. `warm`: the traced model of an
    earlier training of this process, trained from a new model's state (the same weights
    in the end, without tracing again); it is reused by the next warm call, so only for a
    model used and dropped before then (an inner fold's, not one to save)."""
    import keras
    from sklearn.utils.class_weight import compute_class_weight

    from dfu_tui.engine.image_branch import _compile, _fresh_model, build_image_branch

    keras.utils.set_random_seed(seed)
    y = labels[sample_index]
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    class_weight = dict.fromkeys(range(len(CLASSES)), 1.0)
    class_weight.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    if warm:
        model = _fresh_model(modality, crops.shape[1], cfg)
    else:
        model = build_image_branch(modality, crops.shape[1], cfg)
        _compile(model, cfg)
    onehot = np.eye(len(CLASSES), dtype=np.float32)
    model.fit(
        crops,
        onehot[y],
        batch_size=cfg.batch_size,
        epochs=max(1, epochs),
        class_weight=class_weight,
        verbose=0,
        shuffle=True,
    )
    return model


def image_proba(
    model: Any, crops: np.ndarray, sample_index: np.ndarray, n_samples: int
) -> np.ndarray:
    """Per-sample class probabilities (the mean of its crops'); NaN for a sample without a
    crop of this modality."""
    from dfu_tui.engine.image_branch import per_sample

    rows = np.arange(n_samples)
    if not len(crops):
        return np.full((n_samples, len(CLASSES)), np.nan)
    proba = model.predict(crops, verbose=0, batch_size=256)
    out = per_sample(proba, sample_index, rows)
    have = np.isin(rows, sample_index)
    out[~have] = np.nan
    return np.asarray(out)
