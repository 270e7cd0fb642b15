"""The command line's grammar: every command, every argument with its help, an example each;
and the numbers checked before anything is made."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfu_tui import __version__
from dfu_tui.errors import InputError

if TYPE_CHECKING:
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit 2, like every bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


RUN_HELP = "a run: its id, a unique prefix of it (as `status` prints), or its folder"
RUNS_DIR_HELP = "the folder of runs (default: ./runs)"
SET_HELP = "change one setting of the config, e.g. cv.folds=10 (repeatable)"

#: Examples shown under each command's --help.
EXAMPLES = {
    "": "dfu-tui                                  the dashboard on ./runs\n"
    "  dfu-tui run configs/default.toml --detach  start a run in the background\n"
    "  dfu-tui status                           every run, with short ids to copy",
    "validate": "dfu-tui validate configs/default.toml --set data.root=/data/dfu",
    "run": "dfu-tui run configs/default.toml --detach --name baseline\n"
    "  dfu-tui run configs/default.toml --set cv.folds=10 --set cv.repeats=2",
    "compare": "dfu-tui compare 20261201-1 20261201-2 --csv > both.csv",
    "archive": "dfu-tui archive 20261201-1",
    "restore": "dfu-tui restore            list archived runs\n  dfu-tui restore 20261201-1",
    "tag": "dfu-tui tag 20261201-1 --name baseline --add thermal",
    "resume": "dfu-tui resume 20261201-1 --detach",
    "show": "dfu-tui show 20261201-1",
    "stop": "dfu-tui stop 20261201-1 --grace 30",
    "status": "dfu-tui status            every run\n  dfu-tui status 20261201-1 --json",
    "export": "dfu-tui export 20261201-1                   RUN/export.csv (as e does)\n"
    "  dfu-tui export 20261201-1 --output -         CSV on standard output\n"
    "  dfu-tui export 20261201-1 --output metrics.csv",
    "report": "dfu-tui report 20261201-1 --output baseline.html",
    "demo-data": "dfu-tui demo-data /tmp/demo --patients 60",
    "fit": "dfu-tui fit 20261201-1                  RUN/model (the run's selected combination)\n"
    "  dfu-tui fit 20261201-1 --combination metadata+thermal_map --output /models/v1",
    "predict": "dfu-tui predict 20261201-1/model /data/next-month --output predictions.csv\n"
    '  echo \'{"Age": 61, "Smoking": 0}\' | dfu-tui predict 20261201-1/model --json',
}


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="example:\n  " + EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p


def _run_argument(p: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        p.add_argument("run", nargs="?", help=RUN_HELP + " (none: every run)")
    else:
        p.add_argument("run", help=RUN_HELP)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help=RUNS_DIR_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: every argument with its help, every command with an
    example."""
    parser = _Parser(
        prog="dfu-tui",
        description="Patient-level cross-validated DFU experiments and their dashboard. "
        "Without a command: the dashboard.",
        epilog="examples:\n  " + EXAMPLES[""],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dfu-tui {__version__}")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help=RUNS_DIR_HELP)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="dashboard: the config preselected in the launch form (default: "
        "configs/default.toml here, else the one shipped with dfu-tui)",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = _command(sub, "validate", "check a config and its dataset, print the coverage")
    p.add_argument("config", type=Path, help="a TOML config (configs/default.toml shows all)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when any file or box is skipped, or any sample key is repeated",
    )
    p.add_argument(
        "--features",
        action="store_true",
        help="print each metadata feature's single-feature kappa (patient-grouped CV)",
    )

    p = _command(sub, "run", "run an experiment (foreground, or --detach)")
    p.add_argument("config", type=Path, help="a TOML config (configs/default.toml shows all)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP
    )
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help=RUNS_DIR_HELP)
    p.add_argument("--detach", action="store_true", help="run in the background and return")
    p.add_argument(
        "--jobs", type=int, default=None, help="tasks at once (default: what the machine allows)"
    )
    p.add_argument(
        "--compare-features",
        metavar="GROUP",
        default=None,
        help="also train the metadata branch without GROUP (e.g. treatment), fold by fold",
    )
    p.add_argument("--name", default="", help="a name for the run (shown in lists)")
    p.add_argument("--tag", dest="tags", action="append", default=[], help="a tag (repeatable)")
    _executor_arguments(p)

    p = _command(sub, "compare", "runs side by side (paired where their folds match)")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP + " (two or more)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help=RUNS_DIR_HELP)
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON instead of a table")
    form.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    p = _command(sub, "archive", "move a run into the runs folder's trash (restorable)")
    _run_argument(p)

    p = _command(sub, "restore", "bring an archived run back (no RUN: list them)")
    p.add_argument("run", nargs="?", help="an archived run's id (none: list them)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help=RUNS_DIR_HELP)

    p = _command(sub, "tag", "name a run, add or remove its tags")
    _run_argument(p)
    p.add_argument("--name", default=None, help="the run's new name ('' clears it)")
    p.add_argument("--add", action="append", default=[], metavar="TAG", help="add a tag")
    p.add_argument("--remove", action="append", default=[], metavar="TAG", help="remove a tag")

    p = _command(sub, "resume", "re-run the missing tasks of a run")
    _run_argument(p)
    p.add_argument("--detach", action="store_true", help="resume in the background and return")
    p.add_argument(
        "--jobs", type=int, default=None, help="tasks at once (default: what the machine allows)"
    )
    _executor_arguments(p)

    p = _command(sub, "show", "a finished run's summary, without touching the run")
    _run_argument(p)

    p = _command(sub, "stop", "stop a running run")
    _run_argument(p)
    p.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL (default: 10)")

    p = _command(sub, "status", "state of every run, or one")
    _run_argument(p, optional=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = _command(sub, "export", "a run's metrics and epoch history")
    _run_argument(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="write this file; - for standard output (default: RUN/export.csv, or "
        "RUN/export.json with --format json: where the dashboard's e writes)",
    )

    p = _command(sub, "report", "a run as one self-contained HTML file")
    _run_argument(p)
    p.add_argument("--output", type=Path, default=None, help="default: RUN/report.html")

    p = _command(sub, "fit", "train a completed run's combination on every patient: a model")
    _run_argument(p)
    p.add_argument(
        "--combination",
        default=None,
        metavar="M+M",
        help="which of the run's combinations (default: the one a search selected, else the "
        "configured one), e.g. metadata+thermal_map",
    )
    p.add_argument(
        "--output", type=Path, default=None, help="the model folder (default: RUN/model)"
    )
    p.add_argument("--detach", action="store_true", help="fit in the background and return")

    p = _command(sub, "predict", "apply a model to a folder of visits in the clinic's format")
    p.add_argument("model", type=Path, help="a model folder (`dfu-tui fit` wrote it)")
    p.add_argument(
        "data",
        type=Path,
        nargs="?",
        help="a folder: the metadata CSV and any image folders (none with --json)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="read visits from standard input as JSON (an object of the CSV's columns, or a "
        "list of them) and print their predictions as JSON (metadata only, no images)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("-"),
        help="the predictions CSV (default: -, standard output)",
    )

    p = _command(sub, "demo-data", "write the synthetic demo dataset into DIR")
    p.add_argument("dir", type=Path, help="a new or empty folder")
    p.add_argument(
        "--patients", type=int, default=None, help="how many patients (default: as the clinic's)"
    )
    p.add_argument("--seed", type=int, default=0, help="the generator's seed (default: 0)")
    return parser


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="where tasks run: a process per task here (local), or a Ray cluster",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        default=None,
        help="the Ray cluster (auto, or ray://host:10001); none: a local Ray instance",
    )
    p.add_argument(
        "--notify",
        metavar="COMMAND",
        default=None,
        help="run COMMAND (e.g. a mail or chat hook) with the run id, state and verdict when "
        "the run completes, fails or is cancelled, or a fold collapses (notify.command)",
    )


MAX_JOBS = 1024
MAX_GRACE = 3600.0


def check_numbers(args: argparse.Namespace) -> None:
    """The command line's numbers and the environment we read, before anything is made:
    `--jobs` in 1..1024, `--grace` finite in [0, 3600], `DFU_TUI_HEARTBEAT` in range."""
    problems = []
    jobs = getattr(args, "jobs", None)
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        problems.append(f"--jobs: must be in 1..{MAX_JOBS}, got {jobs}")
    grace = getattr(args, "grace", None)
    if grace is not None and not 0 <= grace <= MAX_GRACE:  # nan and inf fail too
        problems.append(f"--grace: must be seconds in [0, {MAX_GRACE:g}], got {grace}")
    if args.command in ("run", "resume"):
        from dfu_tui.runs.supervisor import heartbeat_seconds

        try:
            heartbeat_seconds()
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
