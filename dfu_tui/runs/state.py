"""A run's state, rebuilt by folding its events; read by `status`, `export` and the dashboard."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from dfu_tui.config import Config
from dfu_tui.engine.records import FoldResult, Verdict, fold_result
from dfu_tui.runs.events import CHUNK, FINAL_KINDS, Event, EventReader
from dfu_tui.runs.rundir import RunDir

DEFAULT_HEARTBEAT = 5.0
#: The status of a run folder this user may not look into (another user's run).
UNREADABLE = "not readable"


class Ranked(NamedTuple):
    """A combination as rankings see it: its mean on its own paired rows, samples, folds
    with a collapse, and its mean paired difference from the common reference (None when
    the log has no paired references)."""

    name: str
    mean: float
    n: int
    findings: int
    versus: float | None
    reference: str | None


def reference_difference(c: Mapping[str, Any], metric: str) -> tuple[str, float] | None:
    """A fold's combination minus the common reference on their common rows: from its
    `reference` scores, or (a log from before them) from its paired metadata branch."""
    ref = c.get("reference")
    if isinstance(ref, Mapping):
        mine, theirs = ref["fused"].get(metric), ref["reference"].get(metric)
        name = str(ref.get("name"))
    else:
        paired = c.get("paired") or {}
        meta = (paired.get("branches") or {}).get("metadata")
        if meta is None:
            return None
        mine, theirs, name = paired["fused"].get(metric), meta.get(metric), "metadata"
    if mine is None or theirs is None:
        return None
    return name, float(mine) - float(theirs)


#: What a finished task's event says it used (`runs.usage`).
USAGE_KEYS = ("cpu_percent", "peak_rss_mb", "gpu_peak_mb")


@dataclass
class Listing:
    """What the runs list shows of a finished run that a state computes from its fold
    results: from the run's digest (`runs.digest`), until its log is read."""

    folds_done: int
    best_text: str
    flags: dict[str, int]


@dataclass
class RunState:
    """Everything `status` shows about one run, updated event by event. A state made from a
    digest (`listing` set) has the list's figures but no fold results, flags or history:
    the catalog reads its log before a screen shows more."""

    run_id: str
    status: str = "starting"  # running, completed, failed, cancelled (stale is derived)
    reason: str = ""
    started: float | None = None
    finished: float | None = None
    running_since: float | None = None  # the start of the current running period
    ran: float = 0.0  # seconds of the running periods that ended
    last_event: float | None = None
    last_heartbeat: float | None = None
    heartbeat: float = DEFAULT_HEARTBEAT
    jobs: int = 1
    folds: int = 0  # all outer folds: folds x repeats (+ the hold-out)
    folds_per_repeat: int = 0
    repeats: int = 1
    strategy: str = "grouped"
    metric: str = "kappa"  # the criteria scale (logs from before it was logged: unweighted)
    fusion: str = ""  # the configured fusion strategy
    combinations: list[list[str]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    done: dict[str, float] = field(default_factory=dict)  # task -> seconds it took
    best_epochs: dict[str, int] = field(default_factory=dict)  # task -> early stopping's best
    usage: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> CPU %, memory
    finished_at: dict[str, float] = field(default_factory=dict)  # task -> when it finished
    scoring_seconds: list[float] = field(default_factory=list)  # per scored fold, after tasks
    running: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> latest epoch
    started_tasks: list[str] = field(default_factory=list)  # every task_started, in order
    task_started_at: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)  # task -> host / Ray node it ran on
    fold_results: list[FoldResult] = field(default_factory=list)  # fold_finished events
    epochs: list[Event] = field(default_factory=list)
    # task -> epoch number -> its latest epoch event (a resumed task's last attempt wins):
    # what the monitor draws of one task, without scanning every epoch of the run
    epochs_by_task: dict[str, dict[int, Event]] = field(default_factory=dict, compare=False)
    flags: list[Event] = field(default_factory=list)
    failed_task: str | None = None
    pid: int | None = None  # the supervisor's
    pgid: int | None = None
    fold_flags: dict[int, list[Event]] = field(default_factory=dict)  # per scored fold
    pending_flags: dict[int, list[Event]] = field(default_factory=dict)
    skipped: int = 0  # event lines that could not be used (damaged or incomplete)
    log: list[Event] = field(default_factory=list)  # every event but heartbeats and epochs
    # keep `epochs` and `log` (the dashboard's monitor, export, report); without them a
    # state's memory does not grow with the log (status, stop, resume)
    history: bool = field(default=True, compare=False)
    listing: Listing | None = field(default=None, compare=False)

    def apply(self, e: Event) -> None:
        """Fold one event into the state. Events come from `EventReader`, which yields only
        valid ones (`runs.records.valid`). Each kind has its one method (`_on_<kind>`,
        listed in `APPLY`)."""
        kind = e["kind"]
        previous, self.last_event = self.last_event, e.get("ts")
        if self.history and kind not in ("heartbeat", "epoch"):
            self.log.append(e)
        handler = APPLY.get(kind)
        if handler is not None:
            handler(self, e, previous)

    def _begin(self, e: Event, previous: float | None) -> None:
        """What a start and a resume share: a new running period."""
        ts = e.get("ts")
        if self.running_since is not None and self.finished is None:
            # the last period ended without a final event (killed): it ran until its last
            # sign of life
            seen = [t for t in (self.last_heartbeat, previous) if t is not None]
            self.ran += max(0.0, max(seen, default=self.running_since) - self.running_since)
        self.status, self.reason, self.finished = "running", "", None
        # flags of a fold whose `fold_finished` never made it to the log (torn by a kill):
        # that fold is scored again after this start, with its flags again
        self.pending_flags.clear()
        self.started = self.started or ts
        self.running_since = ts
        self.last_heartbeat = ts
        self.heartbeat = e.get("heartbeat", self.heartbeat)
        self.jobs = e.get("jobs", self.jobs)
        self.pid, self.pgid = e.get("pid"), e.get("pgid")

    def _on_run_started(self, e: Event, previous: float | None) -> None:
        self._begin(e, previous)
        self.folds = e["folds"]
        self.folds_per_repeat = int(e.get("folds_per_repeat") or e["folds"])
        self.repeats = int(e.get("repeats") or 1)
        self.strategy = str(e.get("strategy") or "grouped")
        if e.get("metric") in ("kappa", "quadratic_kappa"):
            self.metric = e["metric"]
        fusion = e.get("fusion")
        if isinstance(fusion, dict) and isinstance(fusion.get("strategy"), str):
            self.fusion = fusion["strategy"]
        self.combinations = e["combinations"]
        self.tasks = e["tasks"]

    def _on_run_resumed(self, e: Event, previous: float | None) -> None:
        self._begin(e, previous)

    def _on_heartbeat(self, e: Event, previous: float | None) -> None:
        self.last_heartbeat = e.get("ts")

    def _on_task_started(self, e: Event, previous: float | None) -> None:
        self.running[e["task"]] = {}
        self.started_tasks.append(e["task"])
        if e.get("node"):
            self.nodes[e["task"]] = str(e["node"])
        if e.get("ts") is not None:
            self.task_started_at[e["task"]] = e["ts"]

    def _on_epoch(self, e: Event, previous: float | None) -> None:
        self.running.setdefault(e["task"], {}).update(e)
        if self.history:
            self.epochs.append(e)
            self.epochs_by_task.setdefault(e["task"], {})[int(e["epoch"])] = e

    def _on_branch_finished(self, e: Event, previous: float | None) -> None:
        self.running.pop(e["task"], None)
        self.done[e["task"]] = e.get("seconds") or 0.0
        if e.get("ts") is not None:
            self.finished_at[e["task"]] = float(e["ts"])
        used = {k: float(e[k]) for k in USAGE_KEYS if isinstance(e.get(k), int | float)}
        if used:
            self.usage[e["task"]] = used
        if isinstance(e.get("best_epoch"), int):
            self.best_epochs[e["task"]] = e["best_epoch"]

    def _on_fold_finished(self, e: Event, previous: float | None) -> None:
        kept = [f for f in self.fold_results if f["fold"] != e["fold"]]
        self.fold_results = [*kept, fold_result(e)]
        ended = [t for task, t in self.finished_at.items() if task.startswith(f"fold{e['fold']}-")]
        if ended and e.get("ts") is not None:  # scoring it took this long after its last task
            self.scoring_seconds.append(max(0.0, float(e["ts"]) - max(ended)))
        # a fold scored again (a resume) replaces its flags, never adds to them
        self.fold_flags[e["fold"]] = self.pending_flags.pop(e["fold"], [])

    def _on_flag(self, e: Event, previous: float | None) -> None:
        self.flags.append(e)
        if e.get("scope") == "fold" and isinstance(e.get("fold"), int):
            self.pending_flags.setdefault(e["fold"], []).append(e)

    def _on_final(self, e: Event, previous: float | None) -> None:
        ts = e.get("ts")
        kind = e["kind"]
        self.status = {"run_finished": "completed", "run_failed": "failed"}.get(kind, "cancelled")
        self.reason = e.get("reason", "")
        self.failed_task = e.get("task")
        self.finished = ts
        self.running.clear()
        if self.running_since is not None and ts is not None:
            self.ran += max(0.0, ts - self.running_since)
        self.running_since = None

    def effective_status(self, now: float | None = None) -> str:
        """`stale` when a running run's heartbeats stopped for two intervals."""
        now = time.time() if now is None else now
        beat = self.last_heartbeat
        if self.status == "running" and beat is not None and now - beat > 2 * self.heartbeat:
            return "stale"
        return self.status

    @property
    def folds_done(self) -> int:
        return len(self.fold_results) if self.listing is None else self.listing.folds_done

    def fold_name(self, number: int) -> str:
        """`fold 3`, `r2 fold 3` with repeats, `hold-out` for the temporal hold-out and
        `case-mix 1` for its case-mix folds."""
        from dfu_tui.engine.records import CASEMIX, CV, HOLDOUT, fold_label

        cv_total = self.folds_per_repeat * self.repeats
        kind = CV
        if self.strategy == "temporal" and number > cv_total:
            kind = HOLDOUT if number == cv_total + 1 else CASEMIX
        return fold_label(number, kind, self.folds_per_repeat, self.repeats)

    def elapsed(self, now: float | None = None) -> float:
        """Seconds the run has been running: its running periods (a start, each resume),
        never the time it lay finished, stopped or dead before a resume."""
        if self.started is None:
            return 0.0
        if self.running_since is None:
            return self.ran
        end = time.time() if now is None else now
        if self.effective_status(end) == "stale" and self.last_heartbeat is not None:
            end = self.last_heartbeat
        return self.ran + max(0.0, end - self.running_since)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: every task still to run at the mean duration of finished tasks of
        its branch, running tasks less the time they have run; a branch with no finished
        task yet is estimated from its running task's seconds per epoch (else the mean of
        all finished tasks). Spread over the parallel jobs."""
        if self.status != "running" or not (self.done or self.task_started_at):
            return None
        now = time.time() if now is None else now
        by_branch: dict[str, list[float]] = {}
        for task, seconds in self.done.items():
            by_branch.setdefault(task.split("-", 1)[1], []).append(seconds)
        overall = sum(self.done.values()) / len(self.done) if self.done else None
        for task, latest in self.running.items():
            branch = task.split("-", 1)[1]
            begun = self.task_started_at.get(task)
            if (
                branch not in by_branch
                and begun is not None
                and latest.get("epoch")
                and latest.get("max_epochs")
            ):
                per_epoch = (float(latest.get("ts") or now) - begun) / latest["epoch"]
                by_branch[branch] = [per_epoch * latest["max_epochs"]]
        left = 0.0
        for task in self.tasks:
            if task in self.done:
                continue
            same = by_branch.get(task.split("-", 1)[1])
            expected = sum(same) / len(same) if same else overall
            if expected is None:
                return None  # nothing to go on yet
            if task in self.running:
                expected -= now - self.task_started_at.get(task, now)
            left += max(0.0, expected)
        return left / max(1, self.jobs)

    def eta_range(self, now: float | None = None) -> tuple[float, float] | None:
        """Seconds left as a range (low, high), or None while there is no evidence yet
        ("estimating"). Per kind of task (its branch: metadata, each image modality, at this
        run's size and epoch budget): from the finished tasks of that branch in this run
        (their shortest and longest, widened while there are fewer than 3), else from a
        running task of it: its seconds per epoch times one more epoch (early stopping may
        end it next) to every epoch of the budget. A running task counts what it has left.
        The work is spread over the parallel jobs, never below the longest single task."""
        if self.status != "running" or not (self.done or self.task_started_at):
            return None
        now = time.time() if now is None else now
        finished: dict[str, list[float]] = {}
        for task, seconds in self.done.items():
            finished.setdefault(task.split("-", 1)[1], []).append(seconds)
        spans: dict[str, tuple[float, float]] = {}
        for branch, took in finished.items():
            low, high = min(took), max(took)
            if len(took) < 3:  # few tasks: their spread is not yet known
                low, high = low * 0.8, high * 1.25
            spans[branch] = (low, high)
        for task, latest in self.running.items():
            branch = task.split("-", 1)[1]
            begun = self.task_started_at.get(task)
            if branch in spans or begun is None or not latest.get("epoch"):
                continue
            epochs, budget = int(latest["epoch"]), int(latest.get("max_epochs") or 0)
            per_epoch = (float(latest.get("ts") or now) - begun) / epochs
            spans[branch] = (per_epoch * min(budget, epochs + 1), per_epoch * max(budget, epochs))
        low = high = longest_low = longest_high = 0.0
        for task in self.tasks:
            if task in self.done:
                continue
            span = spans.get(task.split("-", 1)[1])
            if span is None:
                return None  # a kind of task with nothing to go on yet
            ran = now - self.task_started_at[task] if task in self.running else 0.0
            task_low, task_high = max(0.0, span[0] - ran), max(0.0, span[1] - ran)
            low, high = low + task_low, high + task_high
            longest_low, longest_high = max(longest_low, task_low), max(longest_high, task_high)
        jobs = max(1, self.jobs)
        # what the tasks' own seconds leave out (starting a process, loading the data,
        # scoring each fold): the wall time so far over the task time it held, applied on
        factor = 1.0
        worked = sum(self.done.values()) + sum(
            now - self.task_started_at[t] for t in self.running if t in self.task_started_at
        )
        if worked > 0 and self.done:
            factor = min(3.0, max(1.0, self.elapsed(now) * jobs / worked))
        low, high = max(low / jobs, longest_low), max(high / jobs, longest_high)
        # then the folds still to score and the summary, one after the other on the
        # supervisor (each about as long as a fold's scoring so far)
        scoring = statistics.fmean(self.scoring_seconds) if self.scoring_seconds else 0.0
        tail = scoring * (max(0, self.folds - len(self.fold_results)) + 1)
        return low * factor + tail, high * factor + tail

    def mean_kappa(self) -> dict[str, float]:
        """Mean unweighted kappa so far per combination (`+`-joined), over finished
        cross-validation folds, on all samples of each (a temporal hold-out is apart)."""
        sums: dict[str, list[float]] = {}
        for fold in self.fold_results:
            if fold.get("fold_kind", "cv") != "cv":
                continue
            for c in fold["combinations"]:
                if c.get("kappa") is not None:
                    sums.setdefault("+".join(c["modalities"]), []).append(c["kappa"])
        return {k: sum(v) / len(v) for k, v in sums.items()}

    def criteria_means(self) -> dict[str, Ranked]:
        """Per combination over the finished cross-validation folds, on the criteria's scale:
        its mean on the rows with every modality (as the verdict), and its mean paired
        difference from the run's common reference on their common rows (what selection
        and rankings compare), with samples and collapse findings (folds with a collapse)."""
        acc: dict[str, dict[str, Any]] = {}
        for fold in self.fold_results:
            if fold.get("fold_kind", "cv") != "cv":
                continue
            for c in fold["combinations"]:
                paired: Any = c.get("paired")
                value: Any = paired["fused"].get(self.metric) if paired else c.get(self.metric)
                if value is None:
                    continue
                entry = acc.setdefault(
                    "+".join(c["modalities"]),
                    {"values": [], "n": 0, "findings": 0, "diffs": [], "reference": None},
                )
                entry["values"].append(value)
                entry["n"] += int((paired["n"] if paired else c.get("n", 0)) or 0)
                entry["findings"] += any(f.get("level") == "collapse" for f in c["flags"])
                diff = reference_difference(c, self.metric)
                if diff is not None:
                    entry["diffs"].append(diff[1])
                    entry["reference"] = diff[0]
        out = {}
        for k, e in acc.items():
            complete = len(e["diffs"]) == len(e["values"])
            out[k] = Ranked(
                k,
                sum(e["values"]) / len(e["values"]),
                e["n"],
                e["findings"],
                sum(e["diffs"]) / len(e["diffs"]) if complete and e["diffs"] else None,
                e["reference"] if complete else None,
            )
        return out

    def best(self) -> Ranked | None:
        """The combination a search would select so far: the highest mean paired difference
        from the common reference on common rows (a log written before rankings were
        paired: the highest mean on its own rows)."""
        means = [r for r in self.criteria_means().values() if not math.isnan(r.mean)]
        if not means:
            return None
        if all(r.versus is not None for r in means):
            return max(means, key=lambda r: r.versus or 0.0)
        return max(means, key=lambda r: r.mean)

    def best_kappa(self) -> float | None:
        best = self.best()
        return None if best is None else best.mean

    def best_kappa_text(self) -> str:
        """The best mean on the criteria's scale with its n and, picked from N combinations,
        its paired difference from the common reference (what ranked it) and `best of N`
        (the maximum of N noisy means is optimistic); its collapse findings beside it."""
        if self.listing is not None:
            return self.listing.best_text
        best = self.best()
        if best is None:
            return "-"
        n_combos = len(self.combinations)
        text = f"{best.mean:.3f}"
        if n_combos > 1 and best.versus is not None:
            text += f" ({best.versus:+.3f})"
        text += f" n={best.n}" + (f" best of {n_combos}" if n_combos > 1 else "")
        return text + (f" {best.findings}C" if best.findings else "")

    def flag_counts(self) -> dict[str, int]:
        """Fold-level flags of the configured fusion by level (epoch flags are diagnostics of
        inner splits; the other fusions of `fusion.compare` have their own)."""
        if self.listing is not None:
            return dict(self.listing.flags)
        counts = {"collapse": 0, "warning": 0}
        for flags in self.fold_flags.values():
            for f in flags:
                if not f.get("strategy"):  # the other fusions' flags are in their own table
                    counts[f["level"]] = counts.get(f["level"], 0) + 1
        return counts

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        eta = self.eta(now)
        span = self.eta_range(now)
        chosen = self.best()
        best = None if chosen is None else chosen.mean
        scale = SCALE_KEYS.get(self.metric, self.metric)
        return {
            "run_id": self.run_id,
            "status": self.effective_status(now),
            "reason": self.reason,
            "failed_task": self.failed_task,
            "tasks_done": len(self.done),
            "tasks_total": len(self.tasks),
            "folds_done": self.folds_done,
            "folds_total": self.folds,
            "elapsed_s": round(self.elapsed(now), 1),
            "eta_s": None if eta is None else round(eta, 1),
            # the range the screens show; None while estimating
            "eta_low_s": None if span is None else round(span[0], 1),
            "eta_high_s": None if span is None else round(span[1], 1),
            "mean_unweighted_kappa_all_rows": {
                k: round(v, 4) for k, v in self.mean_kappa().items()
            },
            "metric": self.metric,
            f"best_mean_{scale}": None if best is None or math.isnan(best) else round(best, 4),
            "best_rows": "the rows with every modality of the combination",
            f"best_versus_reference_{scale}": None
            if chosen is None or chosen.versus is None
            else round(chosen.versus, 4),
            "best_reference": None if chosen is None else chosen.reference,
            "best_ranked_by": "mean paired difference from the reference on common rows"
            if chosen is not None and chosen.versus is not None
            else "mean on each combination's own rows (a log without paired references)",
            "best_combination": None if chosen is None else chosen.name,
            "best_n": None if chosen is None else chosen.n,
            "best_collapse_folds": None if chosen is None else chosen.findings,
            "best_selected_from": len(self.combinations),
            "fusion": self.fusion,
            "folds_per_repeat": self.folds_per_repeat,
            "repeats": self.repeats,
            "cv_strategy": self.strategy,
            "flags": self.flag_counts(),
            "combinations": self.combinations,
            "running": sorted(self.running),
            "running_on": {t: self.nodes[t] for t in sorted(self.running) if t in self.nodes},
            "nodes": sorted(set(self.nodes.values())),
            "skipped_event_lines": self.skipped,
            "last_heartbeat_age_s": None
            if self.last_heartbeat is None
            else round((time.time() if now is None else now) - self.last_heartbeat, 1),
        }


#: Kinds that change nothing but the event log (`RunState.log`).
LOG_ONLY = ("fold_started", "message")
#: What each other event kind does to a run's state: one method per kind (a test checks that
#: every kind of `records.EVENT_TYPES` is in exactly one of the two).
APPLY: dict[str, Callable[[RunState, Event, float | None], None]] = {
    "run_started": RunState._on_run_started,
    "run_resumed": RunState._on_run_resumed,
    "heartbeat": RunState._on_heartbeat,
    "task_started": RunState._on_task_started,
    "epoch": RunState._on_epoch,
    "branch_finished": RunState._on_branch_finished,
    "fold_finished": RunState._on_fold_finished,
    "flag": RunState._on_flag,
    **dict.fromkeys(FINAL_KINDS, RunState._on_final),
}

#: The scale in status keys: `best_mean_quadratic_kappa`, `best_mean_unweighted_kappa`.
SCALE_KEYS = {"quadratic_kappa": "quadratic_kappa", "kappa": "unweighted_kappa"}


class RunWatcher:
    """A run's state kept current by reading only the new bytes of its event log."""

    def __init__(self, run_dir: Path, history: bool = True) -> None:
        self.reader = EventReader(RunDir(run_dir).events)
        self.state = RunState(run_dir.name, history=history)

    def refresh(self) -> list[Event]:
        """Apply the events appended since the last refresh; return them."""
        new = self.reader.read_new()
        return self._apply(new)

    def _apply(self, new: list[Event]) -> list[Event]:
        self.state.skipped += self.reader.skipped
        self.reader.skipped = 0
        for e in new:
            self.state.apply(e)
        return new

    def catch_up(self) -> None:
        """Apply the whole log chunk by chunk (`events.CHUNK`): a long log is read in bounded
        memory, the decoded events of one chunk at a time."""
        while True:
            self._apply(self.reader.read_new(CHUNK))
            if not self.reader.more:
                break


def load_state(run_dir: Path, history: bool = True) -> RunState:
    """The state of a run from its whole event log (`history`: with every epoch and event;
    without, in memory that does not grow with the log)."""
    watcher = RunWatcher(run_dir, history)
    watcher.catch_up()
    return watcher.state


def verdict_so_far(cfg: Config, state: RunState, index: int) -> Verdict | None:
    """The verdict of combination `index` over the cross-validation folds finished so far,
    judged by the engine's own `judge_combination` (the final one is in summary.json)."""
    from dfu_tui.engine.judge import judge_combination
    from dfu_tui.engine.paired import test_train_ratio
    from dfu_tui.engine.records import combination_of

    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    if not folds:
        return None
    combo = folds[0]["combinations"][index]["modalities"]
    per = [combination_of(f, index) for f in folds]
    return judge_combination(cfg, combo, per, test_train_ratio(folds), folds)["verdict"]
