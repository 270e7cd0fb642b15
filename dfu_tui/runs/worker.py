"""A worker process: trains one (fold, branch) task of a run, then exits.

    python -m dfu_tui.runs.worker RUN_DIR fold1-thermal_map

Exit 0 when the task's predictions file is written, 1 when training failed, 143 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Raising lets atomic writes remove their temporary files on the way out.
    raise SystemExit(128 + signum)


def run_task(run_dir: Path, task: str, threads: int) -> None:
    """Load the run's config and data, then train and save one task."""
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.data.schema import is_metadata_branch
    from dfu_tui.engine.folds import run_folds
    from dfu_tui.runs import tasks
    from dfu_tui.runs.events import EventWriter
    from dfu_tui.runs.rundir import RunDir

    run = RunDir(run_dir)
    cfg = load_config(run.config)
    fold_number, branch = tasks.parse_task_id(task)
    dataset = load_dataset(cfg.dataset, modalities=[] if is_metadata_branch(branch) else [branch])
    folds = run_folds(cfg, dataset.table)
    events = EventWriter(run.events)
    try:
        tasks.run_task(run, cfg, dataset, folds[fold_number - 1], branch, events, threads)
    finally:
        events.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    if len(args) != 2:
        print("usage: python -m dfu_tui.runs.worker RUN_DIR TASK_ID", file=sys.stderr)
        return 2
    threads = int(os.environ.get("DFU_TUI_THREADS", "0"))
    try:
        run_task(Path(args[0]), args[1], threads)
    except Exception:
        traceback.print_exc()  # into the task's log file, for the failure event
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
