"""The run supervisor: hands (fold, branch) tasks to an executor, writes heartbeats, fuses and
scores each fold as soon as its branches are done, and ends with exactly one final event.

`dfu-tui run --detach` starts it in its own session (`python -m dfu_tui.supervise`, see
`spawn_detached`); `dfu-tui run` runs it in the foreground with a live view.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from dfu_tui.paths import PRIVATE_FILE_MODE, open_own
from dfu_tui.runs.events import Event, EventReader, EventWriter, read_regular
from dfu_tui.runs.executor import Executor, LocalProcessExecutor, tail
from dfu_tui.runs.procs import SUPERVISOR_MODULE, run_token
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.tasks import fold_of, output_valid, plan, score_fold

if TYPE_CHECKING:
    from dfu_tui.engine.folds import Fold
    from dfu_tui.engine.records import FoldResult

POLL_SECONDS = 0.2  # the longest wait between two looks at the tasks (sooner when one ends)
EXIT_COMPLETED, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130


class RunLock:
    """An exclusive lock on a run directory, held by its one supervisor."""

    def __init__(self, run: RunDir) -> None:
        self.path = run.lock
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fd = open_own(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)  # no link, no FIFO
        fh = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = fh.read().strip() or "?"
            fh.close()
            raise InputError(
                f"{self.path.parent}: run is already running (supervisor pid {holder})"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def request_stop(run: RunDir) -> None:
    """Leave a stop request in the run folder, for a run or resume that is starting and has
    no process to signal yet; `clear_stop` (at the start of `resume`) removes it."""
    from dfu_tui.paths import write_own_text

    write_own_text(run.stop_request, f"{time.time():.3f}\n")


def stop_requested(run: RunDir) -> bool:
    try:
        return stat.S_ISREG(os.lstat(run.stop_request).st_mode)
    except OSError:
        return False


def clear_stop(run: RunDir) -> None:
    path = run.stop_request
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(path).st_mode):
            path.unlink()


def is_locked(run: RunDir) -> bool:
    """Whether a live supervisor holds the run's lock."""
    try:  # a lock that is a link, a FIFO or a folder is nobody's lock
        fd = os.open(run.lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def make_executor(cfg: Config, run: RunDir, events: EventWriter) -> Executor:
    """The executor the config asks for: a process per task here, or Ray."""
    if cfg.executor.kind == "ray":
        from dfu_tui.runs.ray_executor import RayExecutor

        return RayExecutor(run, cfg, events)
    return LocalProcessExecutor(
        tasks_per_gpu=cfg.executor.tasks_per_gpu, tasks_per_worker=cfg.executor.tasks_per_worker
    )


class Supervisor:
    """Runs the pending tasks of one run to a single final event."""

    def __init__(
        self,
        run: RunDir,
        jobs: int,
        heartbeat: float,
        executor: Executor | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.run = run
        self.cfg: Config = load_config(run.config)
        self.jobs = max(1, jobs)
        self.heartbeat = heartbeat
        self.on_event = on_event
        self.events = EventWriter(run.events)
        run_token()  # in our environment before anything is started: what proves it ours
        self.executor: Executor = executor or make_executor(self.cfg, run, self.events)
        self.reader = EventReader(run.events)
        from dfu_tui.runs.notify import Notifier

        command = self.cfg.notify.command
        self.notifier = Notifier(command, run) if command.strip() else None
        self.cancel_requested = threading.Event()
        self._stop_beats = threading.Event()
        self._final_lock = threading.Lock()  # no heartbeat after the final event

    # -- plumbing

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.cancel_requested.set()

    def _beat(self) -> None:
        while not self._stop_beats.wait(self.heartbeat):
            with self._final_lock:
                if not self._stop_beats.is_set():
                    self.events.emit("heartbeat", pid=os.getpid())

    def _final(self, kind: str, **fields: object) -> None:
        """The run's one final event; no heartbeat follows it."""
        with self._final_lock:
            self._stop_beats.set()
            self.events.emit(kind, **fields)

    def _pump(self) -> None:
        """Pass every new event in the log (workers' included) to the listener, and the
        ones worth it to `notify.command`."""
        if self.on_event is not None:
            for e in self.reader.read_new():
                self.on_event(e)
        if self.notifier is not None:
            for problem in self.notifier.pump():
                with contextlib.suppress(OSError):
                    self.events.emit("message", text=problem)

    # -- the run

    def execute(self, resume: bool) -> int:
        """Run to completion, failure or cancellation; return the exit code."""
        from dfu_tui.data.dataset import load_dataset
        from dfu_tui.engine.folds import run_folds
        from dfu_tui.engine.plan import total_folds

        lock = RunLock(self.run)
        lock.acquire()
        # a stop that came while this run or resume was starting (before this process held
        # the lock, so it had nothing to signal) left a request; `resume` clears older ones
        # and a new run's folder has none of its own
        if stop_requested(self.run):
            lock.release()
            doing = "resume" if resume else "run"
            print(f"error: {self.run.path}: stopped while the {doing} was starting", flush=True)
            return EXIT_CANCELLED
        self._end_orphans()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        cfg = self.cfg
        tasks = plan(cfg)
        self._clean_temporaries()
        pending = [t for t in tasks if not output_valid(self.run, t)]
        common = {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "jobs": self.jobs,
            "heartbeat": self.heartbeat,
        }
        if resume:
            self.events.emit("run_resumed", pending=pending, **common)
        else:
            self.events.emit(
                "run_started",
                run_id=self.run.run_id,
                fingerprint=cfg.fingerprint(),
                folds=total_folds(cfg),
                folds_per_repeat=cfg.cv.folds,
                repeats=cfg.cv.repeats,
                strategy=cfg.cv.strategy,
                metric=cfg.criteria.metric,
                combinations=[list(c) for c in cfg.combinations],
                tasks=tasks,
                fusion={"strategy": cfg.fusion.strategy, "weights": cfg.fusion_weights()},
                **common,
            )
        beats = threading.Thread(target=self._beat, daemon=True)
        beats.start()
        start = time.perf_counter()
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        try:
            table = load_dataset(cfg.dataset, modalities=[]).table
            labels, folds = table.labels, run_folds(cfg, table)
            # a file that is sound but not of its fold (3 rows for a 32-row fold): again
            pending += [
                t
                for t in tasks
                if t not in pending and not output_valid(self.run, t, folds[fold_of(t) - 1])
            ]
            results: dict[int, FoldResult] = {}
            started_folds: set[int] = set()
            logged = self._logged_folds() if resume else {}
            for fold in folds:  # folds already complete (resume): their logged scores, or now
                if not any(fold_of(t) == fold.number for t in pending):
                    results[fold.number] = logged.get(fold.number) or score_fold(
                        self.run, cfg, labels, fold, self.events, table.patients
                    )
            while pending or self.executor.running:
                if self.cancel_requested.is_set():
                    self.executor.cancel()
                    self._pump()
                    self._final(
                        "run_cancelled",
                        reason="stopped by signal",
                        seconds=round(time.perf_counter() - start, 3),
                    )
                    return EXIT_CANCELLED
                self._submit_ready(pending, folds, started_folds, threads)
                # every outcome of one poll is judged before any fold is scored: a fold's
                # tasks may end together, one of them failed (its file is missing)
                outcomes = self.executor.poll()
                failed = [
                    o for o in outcomes if o.exit_code != 0 or not output_valid(self.run, o.task_id)
                ]
                if failed:
                    outcome = failed[0]
                    self.executor.cancel()
                    self._pump()
                    if self.cancel_requested.is_set():
                        continue  # the worker died of our own stop signal
                    self._final(
                        "run_failed",
                        task=outcome.task_id,
                        exit_code=outcome.exit_code,
                        reason=failure_reason(outcome.task_id, outcome.exit_code, outcome.log),
                        log_tail=tail(outcome.log),
                        seconds=round(time.perf_counter() - start, 3),
                    )
                    return EXIT_FAILED
                # the freed workers take their next tasks before the fold is scored (scoring
                # takes a second or so, off the critical path)
                self._submit_ready(pending, folds, started_folds, threads)
                # each fold once, when none of its tasks is left to run
                for fold_no in sorted({fold_of(o.task_id) for o in outcomes}):
                    busy = [t for t in (*pending, *self.executor.running) if fold_of(t) == fold_no]
                    if not busy:
                        results[fold_no] = score_fold(
                            self.run,
                            cfg,
                            labels,
                            folds[fold_no - 1],
                            self.events,
                            table.patients,
                        )
                self._pump()
                self.executor.wait(POLL_SECONDS)
            self._finish(cfg, results)
            self._final(
                "run_finished", status="completed", seconds=round(time.perf_counter() - start, 3)
            )
            return EXIT_COMPLETED
        except Exception as exc:
            self.executor.cancel()
            with contextlib.suppress(OSError):  # a full disk may refuse even this line
                self._final(
                    "run_failed",
                    reason=f"{type(exc).__name__}: {exc}",
                    seconds=round(time.perf_counter() - start, 3),
                )
            return EXIT_FAILED
        finally:
            with contextlib.suppress(Exception):  # a cluster already gone is closed enough
                self.executor.close()
            self._stop_beats.set()
            self._pump()
            self.events.close()
            self._write_digest()
            lock.release()

    def _submit_ready(
        self, pending: list[str], folds: list[Fold], started_folds: set[int], threads: int
    ) -> None:
        """Start pending tasks while the run has free jobs (each fold's first with its
        `fold_started`); an image task waits for a free GPU slot."""
        while pending and len(self.executor.running) < self.jobs:
            task_id = next_task(pending, self.executor.running, self.jobs, self.executor.can_take)
            if not task_id:
                return  # what is left waits for a GPU slot
            pending.remove(task_id)
            fold_no = fold_of(task_id)
            if fold_no not in started_folds:
                started_folds.add(fold_no)
                fold = folds[fold_no - 1]
                self.events.emit(
                    "fold_started",
                    fold=fold_no,
                    n_train=len(fold.train),
                    n_val=len(fold.val),
                    repeat=fold.repeat,
                    fold_kind=fold.kind,
                )
            self.executor.submit(self.run.path, task_id, threads)

    def _finish(self, cfg: Config, results: dict[int, FoldResult]) -> None:
        from dfu_tui.engine.summary import finite, summarize
        from dfu_tui.runs.rundir import write_summary

        ordered = [results[k] for k in sorted(results)]
        write_summary(self.run, finite(summarize(cfg, self.run.run_id, ordered, "completed")))

    def _write_digest(self) -> None:
        """What the runs list shows of the run, from its log as it ends (a dashboard over
        hundreds of runs reads these instead of every log)."""
        from dfu_tui.runs.digest import log_mark, write_digest
        from dfu_tui.runs.state import load_state

        with contextlib.suppress(Exception):  # a cache: the dashboard reads the log instead
            mark = log_mark(self.run)
            if mark is not None:
                write_digest(self.run, load_state(self.run.path, history=False), mark)

    def _logged_folds(self) -> dict[int, FoldResult]:
        """Fold results already in the log (a resume does not score, or flag, them twice)."""
        from dfu_tui.runs.state import load_state

        out = {}
        for f in load_state(self.run.path, history=False).fold_results:
            out[f["fold"]] = f  # the fold's own fields (`records.fold_result`)
        return out

    def _end_orphans(self) -> None:
        """Workers of this run left by a supervisor that was killed (and what else it
        started, a local Ray instance's processes): end them before their tasks are trained
        again (their temporary files are removed next)."""
        from dfu_tui.runs.procs import end_processes, run_processes

        orphans = [p for p in run_processes(self.run.path) if p.role != "supervisor"]
        if orphans:
            left = end_processes([p.pid for p in orphans], grace=10.0)
            self.events.emit(
                "message",
                text=f"ended {len(orphans) - len(left)} orphaned process(es) of this run: "
                + ", ".join(
                    f"{p.task or 'started by its supervisor'} (pid {p.pid})" for p in orphans
                ),
            )

    def _clean_temporaries(self) -> None:
        """Temporary files of a killed writer are never outputs: remove them."""
        for tmp in self.run.path.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def next_task(
    pending: list[str], running: list[str], jobs: int, can_take: Callable[[str], bool]
) -> str:
    """The task to start next ("" when none may start now): the long ones first, as far as
    the folds allow. An image task (a CNN: ten times a forest's time or more) of a fold up to
    `jobs` folds past the earliest unfinished one goes before a metadata task, so the
    last minutes of a run are not one CNN training alone beside an idle core, while the folds
    still finish in order, one after another, for the live view (`--jobs 1`: in fold order,
    each fold's CNN first)."""
    from dfu_tui.data.schema import is_metadata_branch
    from dfu_tui.runs.tasks import parse_task_id

    ready = [t for t in pending if can_take(t)]
    if not ready:
        return ""
    earliest = min(fold_of(t) for t in (*pending, *running))
    window = earliest + (jobs if jobs > 1 else 0)
    image = [t for t in ready if not is_metadata_branch(parse_task_id(t)[1])]
    return next((t for t in image if fold_of(t) <= window), ready[0])


def child_errors(log: Path, offset: int) -> list[str]:
    """The `error:` lines appended to a shared log since `offset` (another supervisor may be
    writing its progress to the same file meanwhile)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln.removeprefix("error: ") for ln in text.splitlines() if ln.startswith("error: ")]


def failure_reason(task_id: str, code: int, log: Path) -> str:
    """`task T exited with code C: <its last log line>` (e.g. a full disk's OSError)."""
    last = "".join(tail(log, 1)).strip()
    if not last and disk_full(log.parent):
        last = "No space left on device (the run's disk is full; its log could not be written)"
    return f"task {task_id} exited with code {code}" + (f": {last}" if last else "")


def disk_full(path: Path, below: int = 1_000_000) -> bool:
    """Whether the filesystem holding `path` has less than `below` bytes free."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < below


def spawn_detached(run: RunDir, jobs: int, resume: bool = False) -> subprocess.Popen[bytes]:
    """Start a supervisor in its own session, detached from this terminal."""
    log = open_own(run.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    cmd = [sys.executable, "-m", SUPERVISOR_MODULE, str(run.path.resolve())]
    cmd += ["--jobs", str(jobs)]
    proc = subprocess.Popen(
        [*cmd, *(["--resume"] if resume else [])],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    os.close(log)
    return proc


def lock_holder(run: RunDir) -> int | None:
    """The pid written in the run's lock while a live process holds it, else None."""
    if not is_locked(run):
        return None
    try:
        return int(read_regular(run.lock)[:64].decode("ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


def confirm_started(
    run: RunDir, proc: subprocess.Popen[bytes], log_offset: int = 0, timeout: float = 60.0
) -> None:
    """Return once the detached supervisor holds the run's lock; raise InputError when it
    exited first (another supervisor holds the run, or the run could not start), with its
    own `error:` lines from the run's log (written after `log_offset`)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if lock_holder(run) == proc.pid:
            return
        code = proc.poll()
        if code is not None:
            raise InputError(
                child_errors(run.log, log_offset)
                or [f"{run.path}: supervisor exited with code {code}"]
            )
        time.sleep(0.05)
    raise InputError(f"{run.path}: supervisor did not take the run's lock in {timeout:g} s")


HEARTBEAT_ENV = "DFU_TUI_HEARTBEAT"
HEARTBEAT_RANGE = (0.05, 3600.0)


def heartbeat_seconds() -> float:
    """The heartbeat interval (`DFU_TUI_HEARTBEAT` seconds, default 5): a finite number in
    [0.05, 3600], else InputError naming the variable (0, a negative or nan would flood the
    log; text would leave a half-made run), checked before any run folder exists."""
    raw = os.environ.get(HEARTBEAT_ENV, "5")
    low, high = HEARTBEAT_RANGE
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # nan fails every comparison
        raise InputError(
            f"{HEARTBEAT_ENV}={raw[:40]!r}: must be a number of seconds in [{low:g}, {high:g}]"
        )
    return value
