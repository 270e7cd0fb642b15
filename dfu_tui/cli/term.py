"""What every command shares: the consoles, the exit codes, durations, finding a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from dfu_tui.runs.rundir import RunDir

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

out = Console(highlight=False)
if not out.is_terminal:  # logs and pipes: wide enough that tables and lines do not wrap
    out = Console(highlight=False, width=160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def resolve_run(name: str, runs_dir: Path) -> RunDir:
    """`runs.rundir.resolve_run`, imported when a command needs it (`--help` stays quick)."""
    from dfu_tui.runs.rundir import resolve_run as find

    return find(name, runs_dir)


def own_run(run: RunDir) -> RunDir:
    """`runs.rundir.own_run`: the run, once its folder is checked to be this user's."""
    from dfu_tui.runs.rundir import own_run as checked

    return checked(run)
