"""Tasks as the run directory knows them: their ids, their predictions files, their events.

The engine trains a (fold, branch) task and returns a `TaskResult`; this module is where
that result becomes a predictions file and events, and where a fold's predictions are read
back to be scored. The task id (`fold{k}-{branch}`) is built and parsed only here.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import numpy as np

from dfu_tui.config import Config
from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.rundir import RunDir, load_predictions, save_predictions
from dfu_tui.runs.usage import Usage

if TYPE_CHECKING:
    from dfu_tui.data.dataset import Dataset
    from dfu_tui.engine.folds import Fold
    from dfu_tui.engine.records import FoldResult

PREDICTION_KEYS = ("val_index", "val_label", "val_proba", "train_index", "train_proba", "oof_proba")


def task_id(fold: int, branch: str) -> str:
    """(2, "thermal_map") -> `fold2-thermal_map`."""
    return f"fold{fold}-{branch}"


def parse_task_id(text: str) -> tuple[int, str]:
    """`fold2-thermal_map` -> (2, "thermal_map")."""
    head, _, branch = text.partition("-")
    if not head.startswith("fold") or not head[4:].isdigit() or not branch:
        raise ValueError(f"not a task id: {text!r}")
    return int(head[4:]), branch


def fold_of(text: str) -> int:
    """The fold number of a task id."""
    return parse_task_id(text)[0]


def plan(cfg: Config) -> list[str]:
    """The ids of every task of a run, fold by fold."""
    from dfu_tui.engine.plan import plan_tasks

    return [task_id(t.fold, t.branch) for t in plan_tasks(cfg)]


def output_valid(run: RunDir, task: str, fold: Fold | None = None) -> bool:
    """Whether a task's predictions file exists, is complete and holds what a task writes
    (checked where it enters: a file that fails is trained again): indices and labels of
    one size, labels in 0..2, probabilities that are rows of three in [0, 1] summing to 1
    (or a whole row of NaN: a sample without an image), and, given the fold, exactly the
    fold's training and validation rows."""
    number, branch = parse_task_id(task)
    try:
        p = load_predictions(run.prediction_file(number, branch))
    except (OSError, ValueError, EOFError):
        return False
    if not set(PREDICTION_KEYS) <= set(p):
        return False
    try:
        return predictions_sound(p, fold)
    except (TypeError, ValueError):
        return False


def _probabilities(proba: np.ndarray, rows: int) -> bool:
    if proba.shape != (rows, 3) or not np.issubdtype(proba.dtype, np.floating):
        return False
    empty = np.isnan(proba).all(axis=1)  # a sample without an image
    given = proba[~empty]
    sums = given.sum(axis=1)
    return bool(
        np.isfinite(given).all()
        and (given >= 0).all()
        and (given <= 1).all()
        # each row sums to 1, or is all 0 (a training row no out-of-bag tree voted on)
        and (np.isclose(sums, 1.0, atol=1e-3) | (sums == 0)).all()
    )


def predictions_sound(p: dict[str, np.ndarray], fold: Fold | None = None) -> bool:
    """The content checks of `output_valid`."""
    val, train = p["val_index"], p["train_index"]
    if not (np.issubdtype(val.dtype, np.integer) and np.issubdtype(train.dtype, np.integer)):
        return False
    labels = p["val_label"]
    if labels.shape != val.shape or not np.isin(labels, (0, 1, 2)).all():
        return False
    if not _probabilities(p["val_proba"], len(val)):
        return False
    if not _probabilities(p["train_proba"], len(train)):
        return False
    oof = p["oof_proba"]
    if len(oof) and not (oof.shape == (len(train), 3) and np.issubdtype(oof.dtype, np.floating)):
        return False
    return fold is None or (np.array_equal(val, fold.val) and np.array_equal(train, fold.train))


def run_task(
    run: RunDir,
    cfg: Config,
    dataset: Dataset,
    fold: Fold,
    branch: str,
    events: EventWriter,
    threads: int = 0,
) -> None:
    """Train one task with the engine, streaming its epochs as events; write its
    predictions file, then its `branch_finished` event."""
    from dfu_tui.engine.training import train_task

    tid = task_id(fold.number, branch)
    placed = os.environ.get("CUDA_VISIBLE_DEVICES")  # set by the executor on a GPU machine
    events.emit(
        "task_started",
        task=tid,
        fold=fold.number,
        branch=branch,
        pid=os.getpid(),
        node=socket.gethostname(),
        **({"gpu": placed} if placed is not None else {}),
    )

    usage = Usage.start()

    def on_epoch(record: dict[str, Any]) -> None:
        for kind, fields in epoch_events(tid, fold.number, branch, {**record, **usage.lap()}):
            events.emit(kind, **fields)

    result = train_task(cfg, dataset, fold, branch, threads, on_epoch)
    save_predictions(run.prediction_file(fold.number, branch), **result.arrays())
    events.emit(
        "branch_finished",
        task=tid,
        fold=fold.number,
        branch=branch,
        seconds=result.seconds,
        best_epoch=result.best_epoch,
        **usage.total(),
    )


def epoch_events(
    task: str, fold: int, branch: str, record: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The events of one epoch record: the epoch, then each flag it raised."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("epoch", {"task": task, "fold": fold, "branch": branch, **record})
    ]
    for flag in record["flags"]:
        out.append(
            (
                "flag",
                {
                    "scope": "epoch",
                    "task": task,
                    "fold": fold,
                    "branch": branch,
                    "epoch": record["epoch"],
                    **flag,
                },
            )
        )
    return out


def score_fold(
    run: RunDir,
    cfg: Config,
    labels: np.ndarray,
    fold: Fold,
    events: EventWriter,
    groups: np.ndarray | None = None,
) -> FoldResult:
    """Score one fold from its predictions files (`groups`: the patients, for the hold-out's
    patient bootstrap); log its flags and its `fold_finished`."""
    from dfu_tui.engine.plan import branches_of
    from dfu_tui.engine.scoring import evaluate_fold, fold_flags

    preds = {b: load_predictions(run.prediction_file(fold.number, b)) for b in branches_of(cfg)}
    result = evaluate_fold(cfg, labels, fold, preds, groups)
    for flag in fold_flags(result):
        events.emit("flag", scope="fold", fold=fold.number, **flag)
    events.emit("fold_finished", **result)
    return result
