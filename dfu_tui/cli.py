"""The `dfu-tui` command and its subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dfu_tui import __version__
from dfu_tui.errors import InputError

if TYPE_CHECKING:
    from dfu_tui.config import Config
    from dfu_tui.data.dataset import Dataset

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

out = Console(highlight=False)
if not out.is_terminal:  # logs and pipes: wide enough that tables and lines do not wrap
    out = Console(highlight=False, width=160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit 2, like every bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = _Parser(prog="dfu-tui", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dfu-tui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("validate", help="check a config and its dataset, print the coverage")
    p.add_argument("config", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--strict", action="store_true", help="exit 2 when any file or box is skipped")

    p = sub.add_parser("run", help="run an experiment in the foreground")
    p.add_argument("config", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))

    p = sub.add_parser("demo-data", help="write the synthetic demo dataset into DIR")
    p.add_argument("dir", type=Path)
    p.add_argument("--patients", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_OK
        command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
        return command(args)
    except InputError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


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


def cmd_validate(args: argparse.Namespace) -> int:
    """Load config and dataset, build or reuse the crop cache, print the coverage report."""
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset

    cfg = load_config(args.config, args.overrides)
    with _progress() as bar:
        tasks: dict[str, object] = {}

        def report(modality: str, done: int, total: int) -> None:
            if modality not in tasks:
                tasks[modality] = bar.add_task(f"cropping {modality}", total=total)
            bar.update(tasks[modality], completed=done)  # type: ignore[arg-type]

        dataset = load_dataset(cfg, progress=report)
    cov = dataset.coverage()
    out.print(f"Dataset: {cov['root']}")
    shares = cov["class_shares"]
    assert isinstance(shares, dict)
    out.print(
        f"Samples: {cov['samples']}  Patients: {cov['patients']}  "
        f"Duplicate rows collapsed: {cov['duplicates_collapsed']}  "
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
    problems = _run_blockers(cfg, dataset)
    for line in problems:
        err.print(f"error: {line}", markup=False)
    if problems or (args.strict and skipped_lines):
        return EXIT_BAD_INPUT
    out.print(f"OK: a run of {cfg.source} could start.")
    return EXIT_OK


def _run_blockers(cfg: Config, dataset: Dataset) -> list[str]:
    """Problems that would stop a run even though the data loaded."""
    import numpy as np

    from dfu_tui.data.schema import CLASSES

    problems = []
    labels, patients = dataset.table.labels, dataset.table.patients
    for i, name in enumerate(CLASSES):
        n = len(np.unique(patients[labels == i]))
        if n < cfg.cv.folds:
            problems.append(
                f"{cfg.source}: cv.folds: class {name} has {n} patients, fewer than "
                f"{cfg.cv.folds} folds; expected at least one per validation fold"
            )
    for m, crops in dataset.crops.items():
        if crops.samples_with_images() == 0:
            problems.append(f"{dataset.root}: modality '{m}' has no usable images")
    return problems


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Write the demo dataset into a new folder."""
    from dfu_tui.data.demo import DEFAULT_PATIENTS, write_demo

    patients = DEFAULT_PATIENTS if args.patients is None else args.patients
    if patients < 6:
        raise InputError(f"--patients: must be >= 6, got {patients}")
    target: Path = args.dir
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


def cmd_run(args: argparse.Namespace) -> int:
    """Run an experiment in this process, writing its run directory."""
    from dfu_tui.config import load_config
    from dfu_tui.console import RunConsole
    from dfu_tui.engine.experiment import run_experiment
    from dfu_tui.runs.events import EventWriter
    from dfu_tui.runs.rundir import create_run_dir

    cfg = load_config(args.config, args.overrides)
    run = create_run_dir(args.runs_dir, cfg)
    view = RunConsole(out, cfg, run)
    events = EventWriter(run.events, [view.on_event])
    try:
        with view:
            summary = run_experiment(cfg, run, events)
    except InputError:
        raise
    except Exception as exc:  # a training failure: reported, exit 1
        err.print(f"error: run {run.run_id} failed: {type(exc).__name__}: {exc}", markup=False)
        return EXIT_FAILED
    finally:
        events.close()
    view.final_table(summary)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "run": cmd_run,
    "demo-data": cmd_demo_data,
}
