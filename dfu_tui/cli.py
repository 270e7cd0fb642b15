"""The `dfu-tui` command and its subcommands."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dfu_tui import __version__
from dfu_tui.errors import InputError
from dfu_tui.paths import UnsafePath

if TYPE_CHECKING:
    from dfu_tui.config import Config
    from dfu_tui.console import RunConsole
    from dfu_tui.data.dataset import Dataset
    from dfu_tui.runs.rundir import RunDir

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

out = Console(highlight=False)
if not out.is_terminal:  # logs and pipes: wide enough that tables and lines do not wrap
    out = Console(highlight=False, width=160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
    "export": "dfu-tui export 20261201-1                   CSV on stdout\n"
    "  dfu-tui export 20261201-1 --output metrics.csv",
    "report": "dfu-tui report 20261201-1 --output baseline.html",
    "demo-data": "dfu-tui demo-data /tmp/demo --patients 60",
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
        "--output", type=Path, default=None, help="write this file (default: standard output)"
    )

    p = _command(sub, "report", "a run as one self-contained HTML file")
    _run_argument(p)
    p.add_argument("--output", type=Path, default=None, help="default: RUN/report.html")

    p = _command(sub, "demo-data", "write the synthetic demo dataset into DIR")
    p.add_argument("dir", type=Path, help="a new or empty folder")
    p.add_argument(
        "--patients", type=int, default=None, help="how many patients (default: as the clinic's)"
    )
    p.add_argument("--seed", type=int, default=0, help="the generator's seed (default: 0)")
    return parser


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
            err.print(f"error: {line}", markup=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except UnsafePath as exc:  # a run file that is a link, a FIFO, another user's...
        err.print(f"error: {exc}; not touched", markup=False)
        return EXIT_BAD_INPUT
    except OSError as exc:
        # the machine's state (full disk, permissions): exit 1; any other path that is not
        # what it should be (not a folder, gone, a link): bad input, exit 2; one line either way
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {where}{exc.strerror or exc}", markup=False)
        return EXIT_FAILED if exc.errno in SYSTEM_ERRNOS else EXIT_BAD_INPUT


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
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def default_config() -> Path:
    """`configs/default.toml` in the current folder (a checkout, or a user's own set of
    configs), else the shipped one: `dfu-tui` opens wherever it is typed."""
    here = Path("configs/default.toml")
    return here if here.exists() else SHIPPED_CONFIGS / "default.toml"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _load_with_progress(cfg: Config, modalities: list[str] | None) -> Dataset:
    """Load the dataset, with a progress bar per modality while crops are built."""
    from dfu_tui.data.dataset import load_dataset

    if os.environ.get(PROGRESS_LINES_ENV):  # the dashboard reads these lines as they come
        step: dict[str, int] = {}

        def line(modality: str, done: int, total: int) -> None:
            tenth = done * 10 // max(1, total)
            if done == total or tenth > step.get(modality, -1):
                step[modality] = tenth
                print(f"preparing: cropping {modality} {done}/{total}", file=sys.stderr, flush=True)

        where = "the demo dataset (generated on first use)" if cfg.data.root == "demo" else "data"
        print(f"preparing: loading {where}", file=sys.stderr, flush=True)
        dataset = load_dataset(cfg.dataset, modalities=modalities, progress=line)
        print(f"preparing: {dataset.n_samples} samples loaded", file=sys.stderr, flush=True)
        return dataset
    with _progress() as bar:
        tasks: dict[str, object] = {}

        def report(modality: str, done: int, total: int) -> None:
            if modality not in tasks:
                tasks[modality] = bar.add_task(f"cropping {modality}", total=total)
            bar.update(tasks[modality], completed=done)  # type: ignore[arg-type]

        return load_dataset(cfg.dataset, modalities=modalities, progress=report)


#: Set by the dashboard: preparation progress as plain `preparing: ...` lines on stderr.
PROGRESS_LINES_ENV = "DFU_TUI_PROGRESS_LINES"


def cmd_validate(args: argparse.Namespace) -> int:
    """Load config and dataset, build or reuse the crop cache, print the coverage report."""
    from dfu_tui.config import load_config
    from dfu_tui.runs.prepare import blockers, table_warnings

    cfg = load_config(args.config, args.overrides)
    dataset = _load_with_progress(cfg, None)
    cov = dataset.coverage()
    out.print(f"Dataset: {cov['root']}")
    shares = cov["class_shares"]
    assert isinstance(shares, dict)
    out.print(
        f"Samples: {cov['samples']}  Patients: {cov['patients']}  "
        f"Duplicate rows collapsed: {cov['duplicates_collapsed']}  "
        f"Repeated-key samples: {cov['repeated_key_samples']}  "
        f"Metadata features: {cov['features']}"
    )
    out.print("Class shares: " + ", ".join(f"{c} {s:.1%}" for c, s in shares.items()))
    table = Table(title="Image coverage", title_justify="left")
    for column in ("modality", "samples with images", "crops", "not used", "cache"):
        table.add_column(column)
    modalities = cov["modalities"]
    assert isinstance(modalities, dict)
    reasons = []
    for m, info in modalities.items():
        share = info["samples_with_images"] / max(1, dataset.n_samples)
        table.add_row(
            m,
            f"{info['samples_with_images']} ({share:.0%})",
            str(info["crops"]),
            str(sum(info["skipped"].values())),
            "reused" if info["from_cache"] else "built",
        )
        if info["skipped"]:
            detail = ", ".join(f"{k} {v}" for k, v in info["skipped"].items())
            reasons.append(f"{m}: not used: {detail}")
    if modalities:
        out.print(table)
    for line in reasons:
        out.print(line, markup=False, soft_wrap=True)
    skipped_lines = dataset.skipped()
    for line in skipped_lines:
        err.print(f"warning: {line}", markup=False)
    notes = table_warnings(dataset, demo=cfg.data.root == "demo")
    for line in notes:
        err.print(f"{'error' if args.strict else 'warning'}: {line}", markup=False)
    problems = blockers(cfg, dataset)
    for line in problems:
        err.print(f"error: {line}", markup=False)
    if args.features and not problems:
        _print_single_feature_table(cfg, dataset)
    if problems or (args.strict and (skipped_lines or notes)):
        return EXIT_BAD_INPUT
    out.print(f"OK: a run of {cfg.source} could start.")
    return EXIT_OK


def _print_single_feature_table(cfg: Config, dataset: Dataset) -> None:
    """`validate --features`: each feature alone, patient-grouped CV over the whole dataset."""
    from dfu_tui.data.schema import FEATURE_GROUPS
    from dfu_tui.engine.radar import TREATMENT_NOTE, rank, single_feature_kappas

    table = dataset.table
    frame = table.frame[table.feature_columns]
    single = single_feature_kappas(frame, table.labels, table.patients, cfg.cv.folds, cfg.cv.seed)
    out_table = Table(
        title=f"Single-feature kappa (unweighted; a depth-3 tree on one column, patient-grouped "
        f"{cfg.cv.folds}-fold CV over {len(table.labels)} samples)",
        title_justify="left",
    )
    for column in ("rank", "feature", "kappa", "groups", "note"):
        out_table.add_column(column)
    for i, c in enumerate(rank(single), start=1):
        groups = [g for g, cols in FEATURE_GROUPS.items() if c in cols]
        note = TREATMENT_NOTE if "treatment" in groups and i <= cfg.radar.top else ""
        out_table.add_row(str(i), c, f"{single[c]:.3f}", ", ".join(groups), note)
    out.print(out_table)


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Write the demo dataset into a new folder."""
    from dfu_tui.data.demo import DEFAULT_PATIENTS, write_demo
    from dfu_tui.data.settings import MAX_DEMO_PATIENTS

    patients = DEFAULT_PATIENTS if args.patients is None else args.patients
    if not 6 <= patients <= MAX_DEMO_PATIENTS:
        raise InputError(f"--patients: must be between 6 and {MAX_DEMO_PATIENTS}, got {patients}")
    target: Path = args.dir
    if target.is_symlink():
        raise InputError(f"{target}: a symbolic link; give the folder itself (a new one)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target}: already exists and is not empty; expected a new folder")
    if target.is_dir():
        target.rmdir()
    summary = write_demo(target, patients, args.seed)
    out.print(
        f"Wrote {summary.rows} metadata rows of {summary.patients} patients and "
        f"{summary.images} images ({summary.bytes / 1e6:.1f} MB) to {summary.root} "
        f"in {summary.seconds:.1f} s"
    )
    return EXIT_OK


def _supervise(run: RunDir, jobs: int, resume: bool, detach: bool) -> int:
    """Run the supervisor detached (return at once) or in the foreground with a live view."""
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.resources import default_jobs
    from dfu_tui.runs.state import load_state
    from dfu_tui.runs.supervisor import (
        Supervisor,
        confirm_started,
        heartbeat_seconds,
        spawn_detached,
    )

    jobs = jobs or default_jobs()
    if detach:
        offset = run.log.stat().st_size if run.log.exists() else 0
        proc = spawn_detached(run, jobs, resume)
        confirm_started(run, proc, offset)  # the lock is ours: `stop` from now on finds it
        out.print(run.run_id, markup=False)
        err.print(
            f"supervisor pid {proc.pid}; log {run.log}; follow with: dfu-tui status {run.run_id}",
            markup=False,
        )
        return EXIT_OK
    from dfu_tui.config import load_config
    from dfu_tui.runs import netns

    cfg = load_config(run.config)
    ex = cfg.executor
    view = RunConsole(out, cfg, run)
    with view:
        if netns.local_ray(ex.kind, ex.address) and not netns.can_isolate_here():
            # this process has threads: only a fresh one can keep a local Ray instance on
            # loopback (a user namespace); it runs detached and this view follows its log
            code = _follow(run, jobs, resume, view)
        else:
            code = Supervisor(run, jobs, heartbeat_seconds(), on_event=view.on_event).execute(
                resume
            )
    state = load_state(run.path, history=False)
    if code == 0:
        view.final_table(json.loads(run.summary.read_text(encoding="utf-8")))
        return EXIT_OK
    err.print(f"error: run {run.run_id} {state.status}: {state.reason}", markup=False)
    if state.status == "failed":
        return EXIT_FAILED
    return 130


def _follow(run: RunDir, jobs: int, resume: bool, view: RunConsole) -> int:
    """Start the supervisor in a process of its own and show its events as they come, as a
    foreground run does; Ctrl-C stops the run. Returns the supervisor's exit code."""
    from dfu_tui.runs.control import stop_run
    from dfu_tui.runs.events import FINAL_KINDS, EventReader
    from dfu_tui.runs.supervisor import confirm_started, spawn_detached

    reader = EventReader(run.events)
    reader.offset = run.events.stat().st_size if run.events.exists() else 0
    offset = run.log.stat().st_size if run.log.exists() else 0
    proc = spawn_detached(run, jobs, resume)
    confirm_started(run, proc, offset)
    try:
        while True:
            ended = proc.poll() is not None
            for event in reader.read_new():
                view.on_event(event)
                if event["kind"] in FINAL_KINDS:
                    ended = True
            if ended:
                return proc.wait()
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop_run(run)
        return 130


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


def executor_overrides(args: argparse.Namespace) -> list[str]:
    """`--executor` / `--ray-address` as config overrides."""
    out = []
    if args.executor is not None:
        out.append(f"executor.kind={json.dumps(args.executor)}")
    if args.ray_address is not None:
        out.append(f"executor.address={json.dumps(args.ray_address)}")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Start an experiment: foreground with a live view, or detached with --detach."""
    from dfu_tui.config import load_config
    from dfu_tui.runs.labels import Labels, check_name, check_tag
    from dfu_tui.runs.prepare import check_data, check_ray_address, create_run

    overrides = [*args.overrides, *executor_overrides(args)]
    if args.compare_features is not None:
        overrides.append(f"features.compare={json.dumps(args.compare_features)}")
    cfg = load_config(args.config, overrides)

    labels = Labels(check_name(args.name), tuple(dict.fromkeys(check_tag(t) for t in args.tags)))
    check_ray_address(cfg)
    dataset = check_data(cfg, _load_with_progress, lambda text: err.print(text, markup=False))
    run = create_run(args.runs_dir, cfg, dataset, labels, Path(args.config).name)
    return _supervise(run, args.jobs or 0, resume=False, detach=args.detach)


def resolve_run(name: str, runs_dir: Path) -> RunDir:
    """`runs.rundir.resolve_run`, imported when a command needs it (`--help` stays quick)."""
    from dfu_tui.runs.rundir import resolve_run as find

    return find(name, runs_dir)


def own_run(run: RunDir) -> RunDir:
    """`runs.rundir.own_run`: the run, once its folder is checked to be this user's."""
    from dfu_tui.runs.rundir import own_run as checked

    return checked(run)


MAX_JOBS = 1024
MAX_GRACE = 3600.0


def check_numbers(args: argparse.Namespace) -> None:
    """The command line's numbers and the environment we read, before anything is made:
    `--jobs` in 1..1024, `--grace` finite in [0, 3600], `DFU_TUI_HEARTBEAT` in range."""
    from dfu_tui.runs.supervisor import heartbeat_seconds

    problems = []
    jobs = getattr(args, "jobs", None)
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        problems.append(f"--jobs: must be in 1..{MAX_JOBS}, got {jobs}")
    grace = getattr(args, "grace", None)
    if grace is not None and not 0 <= grace <= MAX_GRACE:  # nan and inf fail too
        problems.append(f"--grace: must be seconds in [0, {MAX_GRACE:g}], got {grace}")
    if args.command in ("run", "resume"):
        try:
            heartbeat_seconds()
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)


def cmd_resume(args: argparse.Namespace) -> int:
    """Re-run only the missing tasks of a run whose fingerprint still matches."""
    from dfu_tui.runs.resume import check_resume

    run = own_run(resolve_run(args.run, args.runs_dir))
    if check_resume(run, executor_overrides(args)) is None:
        out.print(
            f"{run.run_id}: completed; nothing to resume, nothing changed "
            f"(dfu-tui show {run.run_id} prints its summary)",
            markup=False,
        )
        return EXIT_OK
    return _supervise(run, args.jobs or 0, resume=True, detach=args.detach)


def cmd_show(args: argparse.Namespace) -> int:
    """A run's summary as `run` printed it at the end (verdicts, every combination, branch
    and fusion); reads the run's files and writes nothing."""
    from dfu_tui.config import load_config
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.catalog import read_json
    from dfu_tui.runs.state import load_state

    run = resolve_run(args.run, args.runs_dir)
    state = load_state(run.path, history=False)
    summary = read_json(run.summary)
    status = state.effective_status()
    if summary is None or not summary.get("combinations"):
        done = f"{state.folds_done}/{state.folds} folds"
        out.print(
            f"{run.run_id}: {status}, {done}; no summary yet (it is written when the run "
            f"completes; dfu-tui status {run.run_id} follows it)",
            markup=False,
        )
        return EXIT_OK
    out.print(
        f"{run.run_id}: {status}, elapsed {_duration(state.elapsed())}, "
        f"{state.folds_done}/{state.folds} folds",
        markup=False,
    )
    RunConsole(out, load_config(run.config), run).final_table(summary)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Runs side by side: the keys that differ, the criteria-scale mean with n and interval,
    flags and verdict; paired differences from the first run where the folds are the same."""
    import csv
    import io

    from dfu_tui.engine.experiment import finite
    from dfu_tui.runs.compare_runs import caveat_lines, compare_runs, table_rows

    runs = [resolve_run(name, args.runs_dir) for name in args.runs]
    if len({r.path.resolve() for r in runs}) < 2:
        raise InputError("compare: give two or more different runs")
    doc = compare_runs(runs)
    if args.json:
        print(json.dumps(finite(doc), indent=2))
        return EXIT_OK
    head, rows = table_rows(doc)
    if args.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(head)
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
        return EXIT_OK
    table = Table(
        title=f"{len(runs)} runs side by side; paired differences from {doc['reference']} "
        "only where the folds are the same (same data, same validation patients); intervals "
        "are corrected 95% CIs over folds",
        title_justify="left",
    )
    for i, col in enumerate(head):
        table.add_column(escape(col), no_wrap=i == 0)  # a run id is copied whole
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    out.print(table)
    for line in caveat_lines(doc):
        out.print(f"caveat {line}", markup=False)
    return EXIT_OK


def cmd_archive(args: argparse.Namespace) -> int:
    """Move a run into `RUNS/.trash/` (never a running one); `restore` brings it back."""
    from dfu_tui.runs.archive import archive_run

    run = own_run(resolve_run(args.run, args.runs_dir))
    target = archive_run(run)
    out.print(
        f"{run.run_id}: archived to {target}; dfu-tui restore {run.run_id} brings it back",
        markup=False,
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Bring an archived run back into the runs folder, or list the archived runs."""
    from dfu_tui.runs.archive import archived, restore_run

    if args.run is None:
        ids = archived(args.runs_dir)
        out.print("\n".join(ids) if ids else f"no archived runs in {args.runs_dir}", markup=False)
        return EXIT_OK
    target = restore_run(args.runs_dir, args.run)
    out.print(f"{args.run}: restored to {target}", markup=False)
    return EXIT_OK


def cmd_tag(args: argparse.Namespace) -> int:
    """Name a run, add or remove tags; prints the run's labels. Nothing else is touched."""
    from dfu_tui.runs.labels import edited, read_labels, write_labels

    run = own_run(resolve_run(args.run, args.runs_dir))
    labels = read_labels(run.path)
    if args.name is not None or args.add or args.remove:
        labels = edited(labels, args.name, args.add, args.remove)
        try:
            write_labels(run.path, labels)
        except OSError as exc:
            raise InputError(f"{run.path}: cannot save the labels ({exc.strerror})") from None
    tags = " ".join(f"#{t}" for t in labels.tags) or "no tags"
    out.print(f"{run.run_id}: {labels.name or '(no name)'}; {tags}", markup=False)
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    """SIGTERM to the supervisor's process group, SIGKILL after the grace period."""
    from dfu_tui.runs.control import stop_run

    run = own_run(resolve_run(args.run, args.runs_dir))
    status, seconds = stop_run(run, args.grace)
    out.print(f"{run.run_id}: {status} after {seconds:.1f} s", markup=False)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Every run (or one) from its directory: state, progress, ETA, kappa, flags."""
    from dfu_tui.runs.rundir import RunDir
    from dfu_tui.runs.state import SCALE_KEYS, UNREADABLE, load_state

    unreadable: list[Path] = []
    if args.run is not None:
        runs = [resolve_run(args.run, args.runs_dir).path]
    else:
        try:
            found = sorted(args.runs_dir.glob("*")) if args.runs_dir.is_dir() else []
        except OSError:
            found = []
        runs = [p for p in found if RunDir(p).is_run()]
        unreadable = [p for p in found if RunDir(p).unreadable()]
    states = [load_state(p, history=False).to_dict() for p in runs]
    # another user's runs: listed, never read
    states += [{"run_id": p.name, "status": UNREADABLE} for p in unreadable]
    states.sort(key=lambda s: s["run_id"])
    if args.json:
        print(json.dumps(states if not args.run else states[0], indent=2))
        return EXIT_OK
    if not states:
        out.print(f"no runs in {args.runs_dir}")
        return EXIT_OK
    from dfu_tui.runs.rundir import short_ids

    short = short_ids([s["run_id"] for s in states])
    table = Table(
        title=f"Runs in {args.runs_dir}",
        title_justify="left",
        caption="run: the shortest unique prefix of its id (every command takes it; --json "
        "has the whole id). best: the mean on the criteria scale (QWK: quadratic, kappa: "
        "unweighted) over its own rows, n samples. flags: collapse C, warning W.",
        caption_justify="left",
        box=None,
        pad_edge=False,
    )
    width = max((len(v) for v in short.values()), default=3)
    table.add_column("run", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True)
    table.add_column("tasks folds", no_wrap=True)
    table.add_column("time (ETA)")
    table.add_column("combination: best", overflow="fold")
    table.add_column("flags", no_wrap=True)
    for s in states:
        run_id = escape(short[s["run_id"]])
        if s["status"] == UNREADABLE:
            table.add_row(run_id, UNREADABLE, *("-" * 4))
            continue
        combos = s["combinations"]
        label = "+".join(combos[0]) if len(combos) == 1 else f"{len(combos)} combinations"
        kappa = "-"
        key = SCALE_KEYS.get(s["metric"], s["metric"])
        if s[f"best_mean_{key}"] is not None:
            scale = "QWK" if s["metric"] == "quadratic_kappa" else "kappa"
            kappa = f"{scale} {s[f'best_mean_{key}']:.3f} n={s['best_n']}"
            versus = s[f"best_versus_reference_{key}"]
            if s["best_selected_from"] > 1:
                vs = f" {versus:+.3f} vs {s['best_reference']}," if versus is not None else ""
                kappa += f" ({s['best_combination']},{vs} best of {s['best_selected_from']})"
            if s["best_collapse_folds"]:
                kappa += f" collapsed in {s['best_collapse_folds']} fold(s)"
        flags = s["flags"]
        time_left = "" if s["eta_s"] is None else f" ({_duration(s['eta_s'])})"
        table.add_row(
            run_id,
            s["status"],
            f"{s['tasks_done']}/{s['tasks_total']} {s['folds_done']}/{s['folds_total']}",
            _duration(s["elapsed_s"]) + time_left,
            f"{label}: {kappa}",
            f"{flags['collapse']}C {flags['warning']}W",
        )
    out.print(table)
    return EXIT_OK


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def cmd_export(args: argparse.Namespace) -> int:
    """All folds x combinations x branches, and per-epoch history, as CSV or JSON."""
    from dfu_tui.runs.export import export_run

    run = resolve_run(args.run, args.runs_dir)
    to_file = args.output is not None and str(args.output) != "-"
    if to_file:
        from dfu_tui.paths import check_output

        check_output(args.output)  # before the export is built
    text = export_run(run, args.format)
    if not to_file:
        sys.stdout.write(text)
    else:
        from dfu_tui.paths import write_output

        replaced = write_output(args.output, text, "export")
        err.print(f"{'replaced' if replaced else 'wrote'} {args.output}", markup=False)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """The run's config, verdict, per-fold tables and figures as one HTML file (0600)."""
    from dfu_tui.paths import check_output, write_output
    from dfu_tui.report import build_report

    run = resolve_run(args.run, args.runs_dir)
    if args.output is None:
        own_run(run)  # the report goes into the run's folder: it must be ours
    output: Path = args.output if args.output is not None else run.report
    check_output(output)  # before the report is built: a refused path costs nothing
    replaced = write_output(output, build_report(run), "report")
    err.print(f"{'replaced' if replaced else 'wrote'} {output}", markup=False)
    return EXIT_OK


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
}
