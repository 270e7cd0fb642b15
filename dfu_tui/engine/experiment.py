"""An experiment: folds -> (fold, branch) tasks -> predictions -> fusion -> metrics -> events.

Each (fold, branch) is trained once and reused by every combination that contains it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfu_tui.config import Config
from dfu_tui.data.dataset import Dataset
from dfu_tui.data.schema import METADATA, MODALITIES
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import Fold
from dfu_tui.engine.fusion import fuse
from dfu_tui.engine.metrics import fold_metrics, mean_std
from dfu_tui.engine.rules import check_predictions, verdict
from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.rundir import RunDir, load_predictions, save_predictions

NEEDS_OOF = ("tuned", "stacked")


@dataclass(frozen=True)
class Task:
    """One unit of training: a branch on a fold."""

    fold: int
    branch: str

    @property
    def task_id(self) -> str:
        return f"fold{self.fold}-{self.branch}"


def branches_of(cfg: Config) -> list[str]:
    """Every branch any combination needs, in canonical order."""
    needed = {m for combo in cfg.combinations for m in combo}
    return [m for m in MODALITIES if m in needed]


def plan_tasks(cfg: Config) -> list[Task]:
    """All (fold, branch) tasks of a run, fold by fold."""
    return [Task(k, b) for k in range(1, cfg.cv.folds + 1) for b in branches_of(cfg)]


def run_branch_task(
    cfg: Config,
    dataset: Dataset,
    fold: Fold,
    task: Task,
    run: RunDir,
    events: EventWriter,
    threads: int = 0,
) -> None:
    """Train one branch on one fold and write its predictions file.

    `threads` caps the CPU threads of this task (0: all cores, or `image_model.threads`).
    """
    threads = threads or cfg.image_model.threads or (os.cpu_count() or 1)
    table = dataset.table
    inner = cfg.cv.inner_folds if cfg.fusion.strategy in NEEDS_OOF else 0
    seed = cfg.cv.seed * 1000 + fold.number
    events.emit(
        "task_started", task=task.task_id, fold=fold.number, branch=task.branch, pid=os.getpid()
    )
    start = time.perf_counter()
    if task.branch == METADATA:
        from dfu_tui.engine.metadata_branch import train_metadata_branch

        frame = table.frame[table.feature_columns]
        model_cfg = cfg.metadata_model
        if model_cfg.n_jobs == -1:
            model_cfg = dataclasses.replace(model_cfg, n_jobs=threads)
        out: BranchOutput = train_metadata_branch(
            frame, table.labels, table.patients, fold.train, fold.val, model_cfg, seed, inner
        )
    else:
        from dfu_tui.engine.image_branch import configure_tensorflow, train_image_branch

        configure_tensorflow(threads)
        crops = dataset.crops[task.branch]

        def on_epoch(record: dict[str, Any]) -> None:
            events.emit("epoch", task=task.task_id, fold=fold.number, branch=task.branch, **record)
            for flag in record["flags"]:
                events.emit(
                    "flag",
                    scope="epoch",
                    task=task.task_id,
                    fold=fold.number,
                    branch=task.branch,
                    epoch=record["epoch"],
                    **flag,
                )

        out = train_image_branch(
            task.branch,
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
            on_epoch,
        )
    oof = out.oof_proba if out.oof_proba is not None else np.zeros((0, 3))
    save_predictions(
        run.prediction_file(fold.number, task.branch),
        val_index=fold.val,
        val_label=table.labels[fold.val],
        val_proba=out.val_proba,
        train_index=fold.train,
        train_proba=out.train_proba,
        oof_proba=oof,
    )
    events.emit(
        "branch_finished",
        task=task.task_id,
        fold=fold.number,
        branch=task.branch,
        seconds=round(time.perf_counter() - start, 3),
        best_epoch=out.info.get("best_epoch"),
    )


def _metrics(labels: np.ndarray, fold: Fold, val: np.ndarray, train: np.ndarray) -> dict[str, Any]:
    ok_v = ~np.isnan(val).any(axis=1)
    ok_t = ~np.isnan(train).any(axis=1)
    return fold_metrics(labels[fold.val][ok_v], val[ok_v], labels[fold.train][ok_t], train[ok_t])


def evaluate_fold(
    cfg: Config, dataset: Dataset, fold: Fold, run: RunDir, events: EventWriter
) -> dict[str, Any]:
    """Fuse and score every combination and every branch alone on one fold."""
    labels = dataset.table.labels
    preds = {b: load_predictions(run.prediction_file(fold.number, b)) for b in branches_of(cfg)}
    val = {b: p["val_proba"] for b, p in preds.items()}
    train = {b: p["train_proba"] for b, p in preds.items()}
    oof = (
        {b: p["oof_proba"] for b, p in preds.items()} if cfg.fusion.strategy in NEEDS_OOF else None
    )
    result: dict[str, Any] = {"fold": fold.number, "branches": {}, "combinations": []}
    for b in preds:
        m = _metrics(labels, fold, val[b], train[b])
        m["flags"] = [f.to_dict() for f in _flags(cfg, labels, fold, val[b], m)]
        result["branches"][b] = m
    for combo in cfg.combinations:
        weights = cfg.fusion_weights(combo)
        fused = fuse(
            cfg.fusion.strategy, combo, weights, val, train, labels[fold.train], oof, cfg.cv.seed
        )
        m = _metrics(labels, fold, fused.val, fused.train)
        m["fusion"] = {"strategy": cfg.fusion.strategy, "weights": fused.weights}
        if fused.mean_alpha is not None:
            m["mean_alpha"] = fused.mean_alpha
        m["flags"] = [
            f.to_dict() for f in _flags(cfg, labels, fold, fused.val, m, fused.mean_alpha)
        ]
        result["combinations"].append({"modalities": list(combo), **m})
        for flag in m["flags"]:
            events.emit("flag", scope="fold", fold=fold.number, combination=list(combo), **flag)
    events.emit("fold_finished", **result)
    return result


def _flags(
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    proba: np.ndarray,
    m: dict[str, Any],
    mean_alpha: float | None = None,
) -> list[Any]:
    ok = ~np.isnan(proba).any(axis=1)
    return check_predictions(
        labels[fold.val][ok],
        proba[ok].argmax(axis=1),
        cfg.collapse,
        kappa=m["kappa"],
        train_kappa=m["train_kappa"],
        mean_alpha=mean_alpha,
    )


def summarize(cfg: Config, run_id: str, folds: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """The summary.json document: per combination and per branch, folds, mean, std, verdict."""
    branches = []
    branch_mean: dict[str, float] = {}
    for b in branches_of(cfg):
        per = [{"fold": f["fold"], **f["branches"][b]} for f in folds]
        mean, std = mean_std(per)
        branch_mean[b] = mean["kappa"]
        branches.append({"branch": b, "folds": per, "mean": mean, "std": std})
    combos = []
    for i, combo in enumerate(cfg.combinations):
        per = [
            {
                "fold": f["fold"],
                **{k: v for k, v in f["combinations"][i].items() if k != "modalities"},
            }
            for f in folds
        ]
        mean, std = mean_std(per)
        images = [branch_mean[m] for m in combo if m != METADATA]
        image_only = max(images) if images and len(combo) > 1 else None
        meta_only = branch_mean.get(METADATA) if METADATA in combo and len(combo) > 1 else None
        flags = [fl for f in per for fl in f["flags"]]
        combos.append(
            {
                "modalities": list(combo),
                "fusion": {"strategy": cfg.fusion.strategy, "weights": cfg.fusion_weights(combo)},
                "folds": per,
                "mean": mean,
                "std": std,
                "verdict": verdict(mean, flags, cfg.criteria, image_only, meta_only),
            }
        )
    return {"run_id": run_id, "status": status, "combinations": combos, "branches": branches}


def finite(doc: Any) -> Any:
    """The document with NaN and infinities as None (JSON has neither)."""
    if isinstance(doc, float) and (math.isnan(doc) or math.isinf(doc)):
        return None
    if isinstance(doc, dict):
        return {k: finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [finite(v) for v in doc]
    return doc
