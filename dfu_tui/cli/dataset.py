"""`validate` and `demo-data`: a config and its dataset checked, the demo written; loading
with progress (a bar on a terminal, `preparing:` lines for the dashboard)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from dfu_tui.errors import InputError

if TYPE_CHECKING:
    from dfu_tui.config import Config
    from dfu_tui.data.dataset import Dataset

from dfu_tui.cli import term


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
    with term.progress() as bar:
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
    term.out.print(f"Dataset: {cov['root']}")
    shares = cov["class_shares"]
    assert isinstance(shares, dict)
    term.out.print(
        f"Samples: {cov['samples']}  Patients: {cov['patients']}  "
        f"Duplicate rows collapsed: {cov['duplicates_collapsed']}  "
        f"Repeated-key samples: {cov['repeated_key_samples']}  "
        f"Metadata features: {cov['features']}"
    )
    term.out.print("Class shares: " + ", ".join(f"{c} {s:.1%}" for c, s in shares.items()))
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
        term.out.print(table)
    for line in reasons:
        term.out.print(line, markup=False, soft_wrap=True)
    skipped_lines = dataset.skipped()
    for line in skipped_lines:
        term.err.print(f"warning: {line}", markup=False)
    notes = table_warnings(dataset, demo=cfg.data.root == "demo")
    for line in notes:
        term.err.print(f"{'error' if args.strict else 'warning'}: {line}", markup=False)
    problems = blockers(cfg, dataset)
    for line in problems:
        term.err.print(f"error: {line}", markup=False)
    if args.features and not problems:
        _print_single_feature_table(cfg, dataset)
    if problems or (args.strict and (skipped_lines or notes)):
        return term.EXIT_BAD_INPUT
    term.out.print(f"OK: a run of {cfg.source} could start.")
    return term.EXIT_OK


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
    term.out.print(out_table)


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
    term.out.print(
        f"Wrote {summary.rows} metadata rows of {summary.patients} patients and "
        f"{summary.images} images ({summary.bytes / 1e6:.1f} MB) to {summary.root} "
        f"in {summary.seconds:.1f} s"
    )
    return term.EXIT_OK
