"""The typed events of a run's log, one definition per kind (schema version 1).

Required keys are what a reader needs to apply an event (a line without them is skipped
and counted: `valid`, applied by the reader); everything else is `NotRequired`, so logs written by
earlier versions of schema 1 still replay. `fold_finished` carries a `FoldResult`
(`engine/records.py`) and summary.json a `Summary`.
"""

import functools
import types
from collections.abc import Callable
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from dfu_tui.engine.records import CombinationResult, Metrics


class EventBase(TypedDict):
    v: int
    ts: float


class RunStarted(EventBase):
    kind: Literal["run_started"]
    folds: int
    combinations: list[list[str]]
    tasks: list[str]
    run_id: NotRequired[str]
    fingerprint: NotRequired[str | dict[str, Any]]
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
    kind: Literal["run_resumed"]
    pending: NotRequired[list[str]]
    jobs: NotRequired[int]
    heartbeat: NotRequired[float]
    pid: NotRequired[int]
    pgid: NotRequired[int]


class Heartbeat(EventBase):
    kind: Literal["heartbeat"]
    pid: NotRequired[int]


class FoldStarted(EventBase):
    kind: Literal["fold_started"]
    fold: NotRequired[int]
    n_train: NotRequired[int]
    n_val: NotRequired[int]
    repeat: NotRequired[int]
    fold_kind: NotRequired[str]


class TaskStarted(EventBase):
    kind: Literal["task_started"]
    task: str
    fold: NotRequired[int]
    branch: NotRequired[str]
    pid: NotRequired[int]
    node: NotRequired[str]  # the host (and Ray node) the task runs on
    gpu: NotRequired[str]  # its CUDA_VISIBLE_DEVICES on a GPU machine ("" for none)


class Epoch(EventBase):
    kind: Literal["epoch"]
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
    cpu_percent: NotRequired[float]  # over this epoch, % of one core (runs.usage)
    peak_rss_mb: NotRequired[float]


class BranchFinished(EventBase):
    kind: Literal["branch_finished"]
    task: str
    fold: NotRequired[int]
    branch: NotRequired[str]
    seconds: NotRequired[float]
    best_epoch: NotRequired[int | None]
    node: NotRequired[str]
    # what the task's process used (runs.usage): % of one core, peak memory in MB
    cpu_percent: NotRequired[float]
    peak_rss_mb: NotRequired[float]
    gpu_peak_mb: NotRequired[float]


class FoldFinished(EventBase):
    kind: Literal["fold_finished"]
    fold: int
    combinations: list[CombinationResult]
    branches: dict[str, Metrics]
    repeat: NotRequired[int]
    fold_kind: NotRequired[str]
    n_train: NotRequired[int]
    n_val: NotRequired[int]
    radar: NotRequired[dict[str, Any]]
    feature_comparison: NotRequired[dict[str, Any]]


class Flag(EventBase):
    kind: Literal["flag"]
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
    kind: Literal["message"]
    text: NotRequired[str]


class RunFinished(EventBase):
    kind: Literal["run_finished"]
    status: NotRequired[str]
    seconds: NotRequired[float]


class RunFailed(EventBase):
    kind: Literal["run_failed"]
    reason: NotRequired[str]
    task: NotRequired[str]
    exit_code: NotRequired[int]
    log_tail: NotRequired[list[str]]
    seconds: NotRequired[float]


class RunCancelled(EventBase):
    kind: Literal["run_cancelled"]
    reason: NotRequired[str]
    seconds: NotRequired[float]


#: Any event of the log: mypy narrows it by `e["kind"] == ...` to that kind's fields.
AnyEvent = (
    RunStarted
    | RunResumed
    | Heartbeat
    | FoldStarted
    | TaskStarted
    | Epoch
    | BranchFinished
    | FoldFinished
    | Flag
    | Message
    | RunFinished
    | RunFailed
    | RunCancelled
)

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
    return tuple(sorted(keys - EventBase.__required_keys__ - {"kind"}))


@functools.cache
def _hints(typed: type) -> dict[str, Any]:
    return get_type_hints(typed)


def conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value has the type `hint` says (a TypedDict's present keys
    recursively; a float may be null, as NaN is written). What enters from a log is checked
    here before anything reads it."""
    return _checker(hint)(value)


Check = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_float(v: Any) -> bool:
    return v is None or type(v) is float or type(v) is int


def _is_str(v: Any) -> bool:
    return type(v) is str


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _anything(v: Any) -> bool:
    return True


@functools.cache
def _checker(hint: Any) -> Check:
    """A compiled check for one type hint (built once per hint: a log has many lines)."""
    if hint is Any:
        return _anything
    simple = {int: _is_int, float: _is_float, str: _is_str, bool: _is_bool}
    if hint in simple:
        return simple[hint]
    if hint is type(None):
        return lambda v: v is None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = tuple(_checker(h) for h in get_args(hint))
        return lambda v: any(c(v) for c in options)
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        each = _checker(item)
        if each is _anything:
            return lambda v: type(v) is list
        return lambda v: type(v) is list and all(each(x) for x in v)
    if origin is dict:
        key, item = get_args(hint) or (Any, Any)
        k, i = _checker(key), _checker(item)
        return lambda v: type(v) is dict and all(k(a) and i(b) for a, b in v.items())
    if is_typeddict(hint):
        fields = {name: _checker(h) for name, h in _hints(hint).items()}
        return lambda v: (
            type(v) is dict and all(check(v[name]) for name, check in fields.items() if name in v)
        )
    return _anything


def typed(event: dict[str, Any]) -> bool:
    """Whether every field an event's kind defines has its type (extra fields are free)."""
    return conforms(event, EVENT_TYPES[event["kind"]])


#: Fields an event must carry to be applied: the required keys of its definition above.
REQUIRED: dict[str, tuple[str, ...]] = {k: required_fields(k) for k in EVENT_TYPES}
METRIC_FIELDS = {"kappa", "quadratic_kappa", "f1", "predicted_share", "true_share", "flags"}


def valid(e: Any) -> bool:
    """Whether a decoded log line is an event this version can use: an object of a known
    kind with the fields it needs, every field its kind defines with its type
    (`typed`), and usable values. The reader yields only these (`events.EventReader`), so
    what reads an event checks it no more."""
    if not isinstance(e, dict) or e.get("kind") not in EVENT_TYPES:
        return False
    if any(k not in e for k in REQUIRED[e["kind"]]) or not typed(e):
        return False
    ts = e.get("ts")
    if ts is not None and (not isinstance(ts, int | float) or isinstance(ts, bool)):
        return False
    if e["kind"] == "fold_finished":
        results = [*e["combinations"], *e["branches"].values()]
        return (
            bool(results)
            and all(isinstance(m, dict) and set(m) >= METRIC_FIELDS for m in results)
            and all(isinstance(c.get("modalities"), list) for c in e["combinations"])
        )
    return True
