"""Training: one branch on one fold, returning its predictions (and the metadata branch's
leakage-radar arrays). Progress goes through a callback; `dfu_tui.runs` turns results into
files and events. Scoring is `engine.scoring`, the run's summary `engine.summary`."""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfu_tui.config import EXTRA_BACKBONES, Config
from dfu_tui.data.dataset import Dataset
from dfu_tui.data.schema import (
    FEATURE_GROUPS,
    METADATA,
    is_metadata_branch,
)
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import Fold
from dfu_tui.engine.plan import comparison_branch, needs_oof

# An epoch record of an image task (epoch, loss, kappas, shares, flags, ...).
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TaskResult:
    """What a (fold, branch) task returns: its predictions, in the fold's sample order, and
    the radar arrays of the metadata branch."""

    fold: int
    branch: str
    val_index: np.ndarray
    val_label: np.ndarray
    val_proba: np.ndarray
    train_index: np.ndarray
    train_proba: np.ndarray
    oof_proba: np.ndarray
    seconds: float
    best_epoch: int | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array, by its field name, then the extra arrays."""
        fields = (f.name for f in dataclasses.fields(self))
        named = {k: v for k in fields if isinstance(v := getattr(self, k), np.ndarray)}
        return named | self.extra


def branch_features(cfg: Config, dataset: Dataset, branch: str) -> list[str]:
    """The metadata columns a metadata branch uses (the comparison branch drops its group)."""
    columns = dataset.table.feature_columns
    if branch == METADATA:
        return list(columns)
    dropped = set(FEATURE_GROUPS[cfg.features.compare])
    return [c for c in columns if c not in dropped]


def image_trainer(cfg: Config, threads: int) -> Callable[..., BranchOutput]:
    """The function that trains an image branch: Keras, or one registered in
    `config.EXTRA_BACKBONES` (the tests' stand-in). TensorFlow's threads are
    `image_model.threads` (the same whatever `--jobs` says, so the model is too); with 0,
    the task's share of the cores (`threads`), as before."""
    registered = EXTRA_BACKBONES.get(cfg.image_model.backbone)
    if registered is not None:
        module, _, name = registered.partition(":")
        return getattr(importlib.import_module(module), name)
    from dfu_tui.engine.image_branch import configure_tensorflow, train_image_branch

    im = cfg.image_model
    configure_tensorflow(
        im.threads or threads, im.mixed_precision, im.deterministic, fixed=im.threads > 0
    )
    return train_image_branch


def train_task(
    cfg: Config,
    dataset: Dataset,
    fold: Fold,
    branch: str,
    threads: int = 0,
    on_epoch: EpochCallback | None = None,
) -> TaskResult:
    """Train one branch on one fold and return its predictions.

    `threads` caps the CPU threads of this task where they do not change its result (the
    forest's `n_jobs`; TensorFlow's come from `image_model.threads`; 0: all cores);
    `on_epoch` receives each epoch record of an image branch as it ends.
    """
    threads = threads or (os.cpu_count() or 1)
    table = dataset.table
    inner = cfg.cv.inner_folds if needs_oof(cfg) else 0
    seed = cfg.cv.seed * 1000 + fold.number
    start = time.perf_counter()
    extra: dict[str, np.ndarray] = {}
    if is_metadata_branch(branch):
        from dfu_tui.engine.metadata_branch import train_metadata_branch

        frame = table.frame[branch_features(cfg, dataset, branch)]
        model_cfg = cfg.metadata_model
        if model_cfg.n_jobs == -1:
            model_cfg = dataclasses.replace(model_cfg, n_jobs=threads)
        # Always inner out-of-fold: the forest's reported training kappa is patient-grouped
        # (out-of-bag rows share patients with the bag).
        out: BranchOutput = train_metadata_branch(
            frame,
            table.labels,
            table.patients,
            fold.train,
            fold.val,
            model_cfg,
            seed,
            cfg.cv.inner_folds,
        )
        if branch == METADATA and cfg.radar.enabled:
            extra = fold_radar(cfg, frame, table.labels, table.patients, fold, out, seed, threads)
        if cfg.features.compare and branch in (METADATA, comparison_branch(cfg)):
            from dfu_tui.engine.metadata_branch import seed_averaged_proba

            extra["seeds_val_proba"] = seed_averaged_proba(
                frame,
                table.labels,
                fold.train,
                fold.val,
                model_cfg,
                seed,
                cfg.radar.forest_seeds,
                out.val_proba,
            )
    else:
        crops = dataset.crops[branch]
        out = image_trainer(cfg, threads)(
            branch,
            crops.crops,
            crops.sample_index,
            table.labels,
            table.patients,
            fold.train,
            fold.val,
            cfg.image_model,
            cfg.collapse,
            seed,
            inner,
            on_epoch or (lambda record: None),
        )
    return TaskResult(
        fold=fold.number,
        branch=branch,
        val_index=fold.val,
        val_label=table.labels[fold.val],
        val_proba=out.val_proba,
        train_index=fold.train,
        train_proba=out.train_proba,
        oof_proba=out.oof_proba if out.oof_proba is not None else np.zeros((0, 3)),
        seconds=round(time.perf_counter() - start, 3),
        best_epoch=out.info.get("best_epoch"),
        extra=extra,
    )


def fold_radar(
    cfg: Config,
    frame: Any,
    labels: np.ndarray,
    groups: np.ndarray,
    fold: Fold,
    out: BranchOutput,
    seed: int,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """The leakage radar of one fold, as arrays for the metadata branch's predictions file.

    Permutation importance of the fitted pipeline on the validation fold (each permuted row
    through the trees it can change, on `threads` threads: the same figures whatever their
    number); single-feature kappa by patient-grouped CV inside the training fold.
    """
    from dfu_tui.engine.radar import (
        forest_predict,
        permutation_importances,
        radar_inputs,
        single_feature_kappas,
    )

    forest, matrix, groups_of = radar_inputs(out.info["model"], frame, fold.val)
    names = list(frame.columns)
    imp = permutation_importances(
        forest_predict(forest, threads),
        matrix,
        labels[fold.val],
        cfg.radar.repeats,
        seed,
        names,
        groups_of,
    )
    single = single_feature_kappas(
        frame.iloc[fold.train], labels[fold.train], groups[fold.train], cfg.cv.inner_folds, seed
    )
    return {
        "radar_features": np.array(imp.columns, dtype=str),
        "radar_importance": imp.mean,
        "radar_importance_sd": imp.std,
        "radar_single_kappa": np.array([single[c] for c in imp.columns]),
        "radar_baseline_kappa": np.array(imp.baseline),
    }
