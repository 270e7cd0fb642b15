"""The detached supervisor's command line: one run, its live view written to the run's log.

    python -m dfu_tui.supervise RUN_DIR [--jobs N] [--resume]

`dfu-tui run --detach` starts it in its own session (`runs.supervisor.spawn_detached`); the
supervisor itself lives in `dfu_tui.runs.supervisor`, the console view in `dfu_tui.console`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfu_tui.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfu_tui.supervise")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    _isolate_early(args.run_dir)
    try:
        from rich.console import Console

        from dfu_tui.config import load_config
        from dfu_tui.console import RunConsole
        from dfu_tui.runs.resources import default_jobs
        from dfu_tui.runs.rundir import RunDir
        from dfu_tui.runs.supervisor import Supervisor, heartbeat_seconds

        run = RunDir(args.run_dir)
        view = RunConsole(Console(width=160, highlight=False), load_config(run.config), run)
        sup = Supervisor(
            run, args.jobs or default_jobs(), heartbeat_seconds(), on_event=view.on_event
        )
        return sup.execute(resume=args.resume)
    except InputError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2


def _isolate_early(run_dir: Path) -> None:
    """While this process has one thread: a local Ray run gets its own network namespace
    (a user other than root can only have one now, before numpy starts its threads)."""
    from dfu_tui.paths import read_own_bytes
    from dfu_tui.runs import netns

    try:
        text = read_own_bytes(run_dir / "config.toml", limit=1 << 20)
    except (OSError, InputError):
        return  # the supervisor says what is wrong with the folder
    netns.isolate_early(text)


if __name__ == "__main__":
    raise SystemExit(main())
