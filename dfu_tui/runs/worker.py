"""Worker processes: each trains (fold, branch) tasks of one run.

    python -m dfu_tui.runs.worker RUN_DIR fold1-thermal_map     one task, then exit
    python -m dfu_tui.runs.worker RUN_DIR --serve               tasks from standard input

A serving worker (what `LocalProcessExecutor` starts) reads one `TASK THREADS` line at a
time from standard input, trains that task with its output in the task's own log
(`logs/TASK.log`), answers `done TASK CODE` on standard output, and waits for the next:
the package, the run's config, its dataset and folds, and TensorFlow are loaded once per
worker instead of once per task, and a CNN is traced once per worker: the next task trains
the same traced model from a new model's state (weights, random layers' seeds, optimizer).
Every task sets its own seeds, so a task trained after others gives the same model as in a
fresh process (tested). It exits at the end of its input (the supervisor closed it, or
died), after a task that failed (its state is not trusted for the next), and on SIGTERM.

Exit 0 when the task(s) succeeded, 1 when training failed, 143 on SIGTERM.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dfu_tui.runs.stopsignal import install as install_stop
from dfu_tui.runs.stopsignal import stop_code

if TYPE_CHECKING:
    from dfu_tui.config import Config
    from dfu_tui.data.dataset import Dataset
    from dfu_tui.engine.folds import Fold

SERVE = "--serve"


class RunCache:
    """What a worker loads once for all the tasks of its run: config, datasets, folds."""

    def __init__(self, run_dir: Path) -> None:
        from dfu_tui.config import load_config
        from dfu_tui.runs.rundir import RunDir

        self.run = RunDir(run_dir)
        self.cfg: Config = load_config(self.run.config)
        self._datasets: dict[str, Dataset] = {}
        self._folds: list[Fold] | None = None

    def dataset(self, branch: str) -> Dataset:
        """The run's dataset with the branch's images (none for a metadata branch)."""
        from dfu_tui.data.dataset import load_dataset
        from dfu_tui.data.schema import is_metadata_branch

        key = "" if is_metadata_branch(branch) else branch
        if key not in self._datasets:
            self._datasets[key] = load_dataset(self.cfg.dataset, modalities=[key] if key else [])
        return self._datasets[key]

    def folds(self, dataset: Dataset) -> list[Fold]:
        from dfu_tui.engine.folds import run_folds

        if self._folds is None:
            self._folds = run_folds(self.cfg, dataset.table)
        return self._folds

    def train(self, task: str, threads: int) -> None:
        """Train and save one task."""
        from dfu_tui.runs import tasks
        from dfu_tui.runs.events import EventWriter

        fold_number, branch = tasks.parse_task_id(task)
        dataset = self.dataset(branch)
        fold = self.folds(dataset)[fold_number - 1]
        events = EventWriter(self.run.events)
        try:
            tasks.run_task(self.run, self.cfg, dataset, fold, branch, events, threads)
        finally:
            events.close()


def run_task(run_dir: Path, task: str, threads: int) -> None:
    """Load the run's config and data, then train and save one task."""
    RunCache(run_dir).train(task, threads)


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Standard output and error (Python's and the C libraries') into `log` meanwhile."""
    from dfu_tui.paths import open_own

    fd = open_own(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for s in saved:
            os.close(s)


def serve(run_dir: Path) -> int:
    """Train the tasks named on standard input until it ends; answer on standard output."""
    from dfu_tui.runs.rundir import RunDir

    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # stray prints never corrupt the answers
    os.close(null)
    cache: RunCache | None = None
    for line in sys.stdin.buffer:
        task, _, threads_text = line.decode("utf-8", "replace").strip().partition(" ")
        if not task:
            continue
        code = 0
        try:
            with _output_to(RunDir(run_dir).logs / f"{task}.log"):
                try:
                    cache = cache or RunCache(run_dir)
                    cache.train(task, int(threads_text or 0))
                except Exception:
                    traceback.print_exc()  # into the task's log file, for the failure event
                    code = stop_code() or 1  # a stop a library turned into its own error
        except Exception as exc:  # the task's log could not be opened (a planted link)
            print(f"error: {task}: {exc}", file=sys.stderr, flush=True)
            code = 1
        answers.write(f"done {task} {code}\n")
        if code:
            return code  # what failed may have left state behind: not trusted for the next
        gc.collect()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    install_stop()
    if len(args) != 2:
        print(f"usage: python -m dfu_tui.runs.worker RUN_DIR (TASK_ID | {SERVE})", file=sys.stderr)
        return 2
    if args[1] == SERVE:
        return serve(Path(args[0]))
    threads = int(os.environ.get("DFU_TUI_THREADS", "0"))
    try:
        run_task(Path(args[0]), args[1], threads)
    except Exception:
        traceback.print_exc()  # into the task's log file, for the failure event
        return stop_code() or 1  # a stop a library turned into its own error
    return 0


def _exit(code: object) -> None:
    """End the process without Python's teardown, which with TensorFlow loaded took 1.4 s of
    a core per worker (its thread pools and objects torn down one by one) while the run
    waited: everything a task writes is written, closed and renamed into place when the
    task ends (a signal's exception has run the `finally`s on its way here). Python's own
    buffers are flushed first."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    try:
        _exit(main())
    except SystemExit as stop:  # SIGTERM, or an exit on the way
        _exit(stop.code)
