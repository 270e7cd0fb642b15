"""Task executors: the supervisor hands (fold, branch) tasks to one through submit/poll/cancel.

`LocalProcessExecutor` runs tasks in worker processes that each take task after task (the
imports and the run's data loaded once per worker; each task seeds itself and clears
TensorFlow's session when it ends). A cluster engine can implement the same methods; its
`wait` returns as soon as a task ends where it can tell, else after the time given.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dfu_tui.data.schema import is_metadata_branch
from dfu_tui.runs.resources import GpuSlots, can_start, detect_gpus, task_devices
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.tasks import parse_task_id
from dfu_tui.runs.worker import SERVE


@dataclass(frozen=True)
class TaskOutcome:
    """A finished task: its id and exit code (0 = success)."""

    task_id: str
    exit_code: int
    log: Path


class Executor(Protocol):
    """What the supervisor needs from an execution engine."""

    def can_take(self, task_id: str) -> bool:
        """Whether the task may start now (an image task waits for a free GPU slot)."""

    def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
        """Start a task; returns at once."""

    def poll(self) -> list[TaskOutcome]:
        """Tasks finished since the last poll."""

    def wait(self, seconds: float) -> None:
        """Wait up to `seconds` for something to `poll` (sooner where the engine can tell)."""

    def cancel(self) -> None:
        """Stop every running task."""

    def close(self) -> None:
        """Release what the executor holds (a local Ray instance it started)."""

    @property
    def running(self) -> list[str]:
        """Ids of the tasks still running."""


@dataclass
class _Worker:
    """A serving worker process (`python -m dfu_tui.runs.worker RUN --serve`) and the task it
    is training ("" while idle)."""

    proc: subprocess.Popen[bytes]
    key: tuple[str, ...]  # what its environment fixed: threads, devices
    task: str = ""
    buffer: bytes = b""
    trained: int = 0  # tasks given to it so far
    retiring: bool = False  # its input is closed: it ends without another task

    def answers(self) -> list[tuple[str, int]]:
        """The `done TASK CODE` lines it wrote since the last call (without blocking)."""
        assert self.proc.stdout is not None
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            chunk = b""
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            parts = line.decode("utf-8", "replace").split()
            if len(parts) == 3 and parts[0] == "done" and parts[2].lstrip("-").isdigit():
                out.append((parts[1], int(parts[2])))
        return out


class LocalProcessExecutor:
    """Worker processes on this machine that each train task after task
    (`python -m dfu_tui.runs.worker RUN --serve`: the package, the run's data and TensorFlow
    are loaded once per worker, not once per task); at most as many as tasks run at once,
    ended when the run ends. On a machine with GPUs each image task gets its own device (or
    a share of one, up to `tasks_per_gpu`) through `CUDA_VISIBLE_DEVICES`, and metadata
    tasks see none: a worker takes only tasks placed as it is. A worker that has been given
    `tasks_per_worker` tasks (0: no limit) ends and a fresh one takes the next."""

    def __init__(
        self, gpus: list[str] | None = None, tasks_per_gpu: int = 1, tasks_per_worker: int = 0
    ) -> None:
        self.tasks_per_worker = tasks_per_worker
        self._workers: list[_Worker] = []
        self._logs: dict[str, Path] = {}
        self.slots = GpuSlots(detect_gpus() if gpus is None else gpus, max(1, tasks_per_gpu))

    def can_take(self, task_id: str) -> bool:
        return can_start(_is_image(task_id), self.slots)

    def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
        from dfu_tui.paths import check_own_dir

        logs = RunDir(run_dir).logs
        logs.mkdir(mode=0o700, exist_ok=True)
        check_own_dir(
            logs, follow=False
        )  # a link to elsewhere, or another user's folder: not written
        devices = task_devices(_is_image(task_id), self.slots, task_id)
        key = (
            str(run_dir.resolve()),
            str(threads),
            *sorted(f"{k}={v}" for k, v in devices.items()),
        )
        worker = next(
            (w for w in self._workers if not (w.task or w.retiring) and w.key == key), None
        )
        if worker is None:
            self._end_idle()  # placed otherwise: a new worker takes its core
            worker = self._start(run_dir, key, threads, devices)
        assert worker.proc.stdin is not None
        try:
            worker.proc.stdin.write(f"{task_id} {threads}\n".encode())
            worker.proc.stdin.flush()
        except OSError:
            pass  # it died meanwhile: `poll` reports the task as failed with its exit code
        worker.task = task_id
        worker.trained += 1
        self._logs[task_id] = logs / f"{task_id}.log"

    def _start(
        self, run_dir: Path, key: tuple[str, ...], threads: int, devices: dict[str, str]
    ) -> _Worker:
        from dfu_tui.paths import open_own

        # what workers say outside their tasks (one that cannot start: a broken install)
        log = RunDir(run_dir).logs / "workers.log"
        fd = open_own(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "OMP_NUM_THREADS": str(threads),
            "DFU_TUI_THREADS": str(threads),
            **devices,
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dfu_tui.runs.worker", str(run_dir.resolve()), SERVE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                env=env,
            )
        finally:
            os.close(fd)
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        worker = _Worker(proc, key)
        self._workers.append(worker)
        return worker

    def poll(self) -> list[TaskOutcome]:
        finished = []
        for worker in list(self._workers):
            for task_id, code in worker.answers():
                if task_id == worker.task:
                    finished.append(self._done(worker, code))
            exited = worker.proc.poll()  # a failure, a signal, a kill -9
            if exited is not None:
                if worker.task:
                    rest = worker.answers()  # an answer written just before it exited
                    code = next((c for t, c in rest if t == worker.task), exited)
                    finished.append(self._done(worker, code))
                self._forget(worker)
        return finished

    def _done(self, worker: _Worker, code: int) -> TaskOutcome:
        task_id, worker.task = worker.task, ""
        self.slots.give_back(task_id)
        if self.tasks_per_worker and worker.trained >= self.tasks_per_worker:
            worker.retiring = True  # it exits at the end of its input; `poll` forgets it
            if worker.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.proc.stdin.close()
        return TaskOutcome(task_id, code, self._logs.pop(task_id))

    def _forget(self, worker: _Worker) -> None:
        for pipe in (worker.proc.stdin, worker.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if worker in self._workers:
            self._workers.remove(worker)

    def _end_idle(self) -> None:
        self._stop([w for w in self._workers if not w.task], graceful=True)  # together

    def _stop(self, workers: list[_Worker], graceful: bool) -> None:
        """End workers: idle ones by closing their input (`graceful`), else SIGTERM; a
        worker still there after 5 s is killed."""
        for w in workers:
            if graceful:
                if w.proc.stdin is not None and not w.proc.stdin.closed:
                    with contextlib.suppress(OSError):
                        w.proc.stdin.close()
            elif w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            self._forget(w)

    def cancel(self) -> None:
        self._stop(list(self._workers), graceful=False)
        self._logs.clear()
        self.slots.held.clear()

    def close(self) -> None:
        """End the idle workers (the run has ended: nothing is left for them)."""
        self._end_idle()
        self._stop(list(self._workers), graceful=False)

    @property
    def running(self) -> list[str]:
        return [w.task for w in self._workers if w.task]

    def wait(self, seconds: float) -> None:
        """Return once a worker has written something (a task's answer) or ended (its output
        closes), or after `seconds`: the supervisor hands out the next task at once rather
        than at its next look."""
        outputs = [w.proc.stdout for w in self._workers if w.proc.stdout is not None]
        watched = select.poll()  # poll(2): no limit on descriptor numbers, unlike select(2)
        for out in outputs:
            if not out.closed:
                watched.register(out.fileno(), select.POLLIN)
        try:
            ready = watched.poll(seconds * 1000) if outputs else []
        except OSError:
            ready = []
        if not outputs:
            time.sleep(seconds)
        elif ready:  # an ended worker's output reads as closed until `poll` has reaped it
            time.sleep(0.01)


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last lines of a log file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


def _is_image(task_id: str) -> bool:
    return not is_metadata_branch(parse_task_id(task_id)[1])
