"""The typed events of a run's log, one definition per kind (schema version 1).

Required keys are what a reader needs to apply an event (a line without them is skipped
and counted: `state.well_formed`); everything else is `NotRequired`, so logs written by
earlier versions of schema 1 still replay. `fold_finished` carries a `FoldResult`
(`engine/records.py`) and summary.json a `Summary`.
"""

from typing import Any, NotRequired, TypedDict


class EventBase(TypedDict):
    v: int
    kind: str
    ts: float


class RunStarted(EventBase):
    folds: int
    combinations: list[list[str]]
    tasks: list[str]
    run_id: NotRequired[str]
    fingerprint: NotRequired[dict[str, Any]]
    folds_per_repeat: NotRequired[int]
    repeats: NotRequired[int]
    strategy: NotRequired[str]
    metric: NotRequired[str]
    fusion: NotRequired[dict[str, Any]]
    jobs: NotRequired[int]
    heartbeat: NotRequired[float]
    pid: NotRequired[int]
    pgid: NotRequired[int]


class RunResumed(EventBase):
    pending: NotRequired[list[str]]
    jobs: NotRequired[int]
    heartbeat: NotRequired[float]
    pid: NotRequired[int]
    pgid: NotRequired[int]


class Heartbeat(EventBase):
    pid: NotRequired[int]


class FoldStarted(EventBase):
    fold: NotRequired[int]
    n_train: NotRequired[int]
    n_val: NotRequired[int]
    repeat: NotRequired[int]
    fold_kind: NotRequired[str]


class TaskStarted(EventBase):
    task: str
    fold: NotRequired[int]
    branch: NotRequired[str]
    pid: NotRequired[int]
    node: NotRequired[str]  # the host (and Ray node) the task runs on
    gpu: NotRequired[str]  # its CUDA_VISIBLE_DEVICES on a GPU machine ("" for none)


class Epoch(EventBase):
    task: str
    fold: int
    branch: str
    epoch: int
    max_epochs: int
    loss: NotRequired[float | None]
    train_kappa: NotRequired[float | None]
    val_kappa: NotRequired[float | None]
    val_n: NotRequired[int]
    val_predicted_share: NotRequired[dict[str, float]]
    val_true_share: NotRequired[dict[str, float]]
    flags: NotRequired[list[dict[str, Any]]]
    rules_holding: NotRequired[list[str]]
    collapse_streak: NotRequired[int]


class BranchFinished(EventBase):
    task: str
    fold: NotRequired[int]
    branch: NotRequired[str]
    seconds: NotRequired[float]
    best_epoch: NotRequired[int | None]
    node: NotRequired[str]


class FoldFinished(EventBase):
    fold: int
    combinations: list[dict[str, Any]]
    branches: dict[str, dict[str, Any]]
    repeat: NotRequired[int]
    fold_kind: NotRequired[str]
    n_train: NotRequired[int]
    n_val: NotRequired[int]
    radar: NotRequired[dict[str, Any]]
    feature_comparison: NotRequired[dict[str, Any]]


class Flag(EventBase):
    rule: str
    level: str
    detail: str
    scope: NotRequired[str]  # "epoch" or "fold"
    fold: NotRequired[int]
    task: NotRequired[str]
    branch: NotRequired[str]
    epoch: NotRequired[int]
    combination: NotRequired[list[str]]
    strategy: NotRequired[str]  # a fusion of `fusion.compare` other than the configured one


class Message(EventBase):
    text: NotRequired[str]


class RunFinished(EventBase):
    status: NotRequired[str]
    seconds: NotRequired[float]


class RunFailed(EventBase):
    reason: NotRequired[str]
    task: NotRequired[str]
    exit_code: NotRequired[int]
    log_tail: NotRequired[list[str]]
    seconds: NotRequired[float]


class RunCancelled(EventBase):
    reason: NotRequired[str]
    seconds: NotRequired[float]


EVENT_TYPES: dict[str, type] = {
    "run_started": RunStarted,
    "run_resumed": RunResumed,
    "heartbeat": Heartbeat,
    "fold_started": FoldStarted,
    "task_started": TaskStarted,
    "epoch": Epoch,
    "branch_finished": BranchFinished,
    "fold_finished": FoldFinished,
    "flag": Flag,
    "message": Message,
    "run_finished": RunFinished,
    "run_failed": RunFailed,
    "run_cancelled": RunCancelled,
}


def required_fields(kind: str) -> tuple[str, ...]:
    """The fields an event of `kind` must carry besides `v`, `kind` and `ts`."""
    keys: frozenset[str] = EVENT_TYPES[kind].__required_keys__  # type: ignore[attr-defined]
    return tuple(sorted(keys - EventBase.__required_keys__))
