"""The `dfu-tui` command: `main` parses (`cli.parser`) and dispatches to a command
(`cli.dataset`, `cli.running`, `cli.results`); every error becomes one line and an exit code."""

from __future__ import annotations

import argparse
import errno
from collections.abc import Callable, Sequence
from pathlib import Path

from dfu_tui.cli import term
from dfu_tui.cli.dataset import cmd_demo_data, cmd_validate
from dfu_tui.cli.model import cmd_fit, cmd_predict
from dfu_tui.cli.parser import build_parser, check_numbers
from dfu_tui.cli.results import (
    cmd_archive,
    cmd_compare,
    cmd_export,
    cmd_report,
    cmd_restore,
    cmd_show,
    cmd_status,
    cmd_tag,
)
from dfu_tui.cli.running import cmd_resume, cmd_run, cmd_stop
from dfu_tui.errors import InputError
from dfu_tui.paths import UnsafePath

__all__ = ["COMMANDS", "SHIPPED_CONFIGS", "build_parser", "default_config", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        from dfu_tui.paths import tool_cache_env

        tool_cache_env()  # Keras and matplotlib caches in ours, not in $HOME
        runs_dir = getattr(args, "runs_dir", None)
        if runs_dir is not None and runs_dir.exists() and not runs_dir.is_dir():
            raise InputError(f"{runs_dir}: not a folder; expected the runs folder (--runs-dir)")
        if runs_dir is not None and runs_dir.is_symlink() and not runs_dir.exists():
            raise InputError(f"{runs_dir}: a dangling symbolic link; expected the runs folder")
        if args.command is None:
            return open_dashboard(args)
        check_numbers(args)
        command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
        return command(args)
    except InputError as exc:
        for line in exc.problems:
            term.err.print(f"error: {line}", markup=False)
        return term.EXIT_BAD_INPUT
    except KeyboardInterrupt:
        term.err.print("interrupted")
        return 130
    except UnsafePath as exc:  # a run file that is a link, a FIFO, another user's...
        term.err.print(f"error: {exc}; not touched", markup=False)
        return term.EXIT_BAD_INPUT
    except OSError as exc:
        # the machine's state (full disk, permissions): exit 1; any other path that is not
        # what it should be (not a folder, gone, a link): bad input, exit 2; one line either way
        where = f"{exc.filename}: " if exc.filename else ""
        term.err.print(f"error: {where}{exc.strerror or exc}", markup=False)
        return term.EXIT_FAILED if exc.errno in SYSTEM_ERRNOS else term.EXIT_BAD_INPUT


#: System conditions (not our bugs) reported as one line with exit 1: a full disk, a quota,
#: a read-only filesystem, a permission refused, too many open files.
SYSTEM_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EMFILE,
    errno.EFBIG,
}


def open_dashboard(args: argparse.Namespace) -> int:
    """`dfu-tui` with no subcommand: the Textual dashboard."""
    from dfu_tui.config import load_config

    config = args.config or default_config()
    load_config(config)  # a bad preselected config is reported like any other
    from dfu_tui.tui.app import run_dashboard

    return run_dashboard(args.runs_dir, config)


#: The configs shipped with the package (the repository's `configs/` is a link to them).
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def default_config() -> Path:
    """`configs/default.toml` in the current folder (a checkout, or a user's own set of
    configs), else the shipped one: `dfu-tui` opens wherever it is typed."""
    here = Path("configs/default.toml")
    return here if here.exists() else SHIPPED_CONFIGS / "default.toml"


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "run": cmd_run,
    "resume": cmd_resume,
    "stop": cmd_stop,
    "show": cmd_show,
    "tag": cmd_tag,
    "compare": cmd_compare,
    "archive": cmd_archive,
    "restore": cmd_restore,
    "status": cmd_status,
    "export": cmd_export,
    "report": cmd_report,
    "demo-data": cmd_demo_data,
    "fit": cmd_fit,
    "predict": cmd_predict,
}
