"""A deterministic stand-in for the image branch, for tests whose subject is process
handling (detach, kill, stale, stop, resume, the dashboard following a run): no TensorFlow,
the same inputs and outputs as `engine.image_branch.train_image_branch`, and real epochs
(a nearest-centroid model on each sample's mean crop, sharper each epoch), reported through
the same hook with the same fields and collapse rules, one every `DFU_TUI_STANDIN_EPOCH`
seconds (0.05 by default). Early stopping and inner out-of-fold rows as the real branch."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dfu_tui.config import CollapseConfig, ImageModelConfig
from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import inner_folds, inner_split
from dfu_tui.engine.metrics import kappa, shares
from dfu_tui.engine.rules import EpochFlagger


def _features(crops: np.ndarray, sample_index: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per sample of `rows`: mean and sd of its crops' pixels (NaN without a crop)."""
    flat = crops.reshape(len(crops), -1).astype(np.float64)
    per_crop = np.stack([flat.mean(axis=1), flat.std(axis=1)], axis=1)
    out = np.full((len(rows), 2), np.nan)
    for i, r in enumerate(rows):
        mine = per_crop[sample_index == r]
        if len(mine):
            out[i] = mine.mean(axis=0)
    return out


class _Centroids:
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        ok = ~np.isnan(x).any(axis=1)
        self.mu = x[ok].mean(axis=0)
        self.sd = x[ok].std(axis=0) + 1e-9
        z = (x[ok] - self.mu) / self.sd
        self.centres = np.stack(
            [z[y[ok] == c].mean(axis=0) if (y[ok] == c).any() else z.mean(axis=0) for c in range(3)]
        )

    def proba(self, x: np.ndarray, sharpness: float) -> np.ndarray:
        z = (x - self.mu) / self.sd
        d = ((z[:, None, :] - self.centres[None]) ** 2).sum(axis=2)
        logits = -sharpness * d
        e = np.exp(logits - np.nanmax(logits, axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)  # NaN rows stay NaN


def train(
    modality: str,
    crops: np.ndarray,
    sample_index: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    cfg: ImageModelConfig,
    collapse: CollapseConfig,
    seed: int,
    inner: int = 0,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> BranchOutput:
    pause = float(os.environ.get("DFU_TUI_STANDIN_EPOCH", "0.05"))
    have = np.unique(sample_index)
    train_with = train[np.isin(train, have)]
    pos_tr, pos_va = inner_split(
        labels[train_with], groups[train_with], cfg.inner_val_fraction, seed
    )
    inner_train, inner_val = train_with[pos_tr], train_with[pos_va]
    x_tr = _features(crops, sample_index, inner_train)
    x_va = _features(crops, sample_index, inner_val)
    model = _Centroids(x_tr, labels[inner_train])
    flagger = EpochFlagger(collapse, persist=min(collapse.epoch_persist, cfg.patience + 1))
    history: list[dict[str, Any]] = []
    best, best_epoch, waited = -np.inf, 1, 0
    for epoch in range(1, cfg.epochs + 1):
        sharpness = epoch / cfg.epochs
        train_k = kappa(labels[inner_train], model.proba(x_tr, sharpness).argmax(axis=1))
        pred = model.proba(x_va, sharpness).argmax(axis=1)
        y = labels[inner_val]
        val_k = kappa(y, pred)
        flags = flagger.step(y, pred, val_k, train_k)
        record = {
            "epoch": epoch,
            "max_epochs": cfg.epochs,
            "loss": float(1.0 / (1.0 + epoch)),
            "train_kappa": train_k,
            "val_kappa": val_k,
            "val_n": int(len(y)),
            "rules_holding": sorted({f.rule for f in flagger.raw[-1]}),
            "collapse_streak": flagger.collapse_streak,
            "val_predicted_share": shares(pred),
            "val_true_share": shares(y),
            "flags": [f.to_dict() for f in flags],
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        time.sleep(pause)
        if val_k > best:
            best, best_epoch, waited = val_k, epoch, 0
        else:
            waited += 1
            if waited > cfg.patience:
                break
    sharp = best_epoch / cfg.epochs
    oof = None
    if inner > 1:
        oof = np.full((len(train), len(CLASSES)), np.nan)
        for tr, va in inner_folds(labels[train], groups[train], inner, seed):
            sub = _Centroids(_features(crops, sample_index, train[tr]), labels[train[tr]])
            oof[va] = sub.proba(_features(crops, sample_index, train[va]), sharp)
    return BranchOutput(
        val_proba=model.proba(_features(crops, sample_index, val), sharp),
        train_proba=model.proba(_features(crops, sample_index, train), sharp),
        oof_proba=oof,
        info={"best_epoch": best_epoch, "epochs_run": len(history), "history": history},
    )
