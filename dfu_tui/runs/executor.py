"""Task executors: the supervisor hands (fold, branch) tasks to one through submit/poll/cancel.

`LocalProcessExecutor` runs each task in its own worker process, so TensorFlow state never
accumulates across tasks. A cluster engine can implement the same three methods.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dfu_tui.data.schema import is_metadata_branch
from dfu_tui.runs.resources import GpuSlots, can_start, detect_gpus, task_devices
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.tasks import parse_task_id


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

    def cancel(self) -> None:
        """Stop every running task."""

    def close(self) -> None:
        """Release what the executor holds (a local Ray instance it started)."""

    @property
    def running(self) -> list[str]:
        """Ids of the tasks still running."""


class LocalProcessExecutor:
    """One `python -m dfu_tui.runs.worker RUN TASK` process per task on this machine; on a
    machine with GPUs each image task gets its own device (or a share of one, up to
    `tasks_per_gpu`) through `CUDA_VISIBLE_DEVICES`, and metadata tasks see none."""

    def __init__(self, gpus: list[str] | None = None, tasks_per_gpu: int = 1) -> None:
        self._procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.slots = GpuSlots(detect_gpus() if gpus is None else gpus, max(1, tasks_per_gpu))

    def can_take(self, task_id: str) -> bool:
        return can_start(_is_image(task_id), self.slots)

    def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
        from dfu_tui.paths import check_own_dir, open_own

        logs = RunDir(run_dir).logs
        logs.mkdir(mode=0o700, exist_ok=True)
        check_own_dir(
            logs, follow=False
        )  # a link to elsewhere, or another user's folder: not written
        log = logs / f"{task_id}.log"
        fd = open_own(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "OMP_NUM_THREADS": str(threads),
            "DFU_TUI_THREADS": str(threads),
            **task_devices(_is_image(task_id), self.slots, task_id),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "dfu_tui.runs.worker", str(run_dir.resolve()), task_id],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=env,
        )
        os.close(fd)
        self._procs[task_id] = (proc, log)

    def poll(self) -> list[TaskOutcome]:
        finished = []
        for task_id, (proc, log) in list(self._procs.items()):
            code = proc.poll()
            if code is not None:
                finished.append(TaskOutcome(task_id, code, log))
                del self._procs[task_id]
                self.slots.give_back(task_id)
        return finished

    def cancel(self) -> None:
        for proc, _ in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        self.slots.held.clear()

    def close(self) -> None:
        pass  # every worker process has ended with its task

    @property
    def running(self) -> list[str]:
        return list(self._procs)


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last lines of a log file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


def _is_image(task_id: str) -> bool:
    return not is_metadata_branch(parse_task_id(task_id)[1])
