"""Preparing a run: the checks of its data and settings before anything is made, then its
folder with everything a resume and a report read later. The CLI only parses and prints."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from dfu_tui.config import Config
from dfu_tui.data.dataset import Dataset
from dfu_tui.errors import InputError
from dfu_tui.runs.fingerprint import run_fingerprint, save_fingerprint
from dfu_tui.runs.labels import Labels, write_labels
from dfu_tui.runs.rundir import RunDir, create_run_dir, write_features

#: Loads the dataset for a config and the image modalities given (None: every one); the
#: command line passes its own, which shows progress.
Loader = Callable[[Config, "list[str] | None"], Dataset]


def check_ray_address(cfg: Config) -> None:
    """A Ray address where nothing answers is named in seconds, before anything is made
    (Ray itself would retry for minutes)."""
    if cfg.executor.kind == "ray":
        from dfu_tui.runs.ray_executor import address_problem

        problem = address_problem(cfg.executor.address)
        if problem:
            raise InputError(problem)


def blockers(cfg: Config, dataset: Dataset) -> list[str]:
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


def table_warnings(dataset: Dataset, demo: bool = False) -> list[str]:
    """What the metadata CSV has that a run copes with but a user should know (`demo`: the
    built-in demo, whose quirks are planted on purpose and said so)."""
    table = dataset.table
    lines = []
    if table.repeated_keys:
        rows = sorted(line for group in table.repeated_keys for line in group)
        shown = ", ".join(map(str, rows[:8])) + (
            f" and {len(rows) - 8} more" if len(rows) > 8 else ""
        )
        modalities = dataset.coverage()["modalities"]
        assert isinstance(modalities, dict)
        images = sum(int(info["repeated_key_samples_with_images"]) for info in modalities.values())
        lines.append(
            f"{dataset.metadata_path}: {len(table.repeated_keys)} sample keys (Patient#, Appt#, "
            f"DFU#) repeated on {len(rows)} rows with differing values (rows {shown}); kept as "
            f"separate samples, images named with such a key feed each of them "
            f"({images} sample-modality pairs with images)"
            + ("; the demo plants these on purpose, as the clinic's file has them" if demo else "")
        )
    if table.extra_columns:
        lines.append(
            f"{dataset.metadata_path}: {len(table.extra_columns)} column(s) not in the clinic's "
            f"format, used as features: {', '.join(table.extra_columns)}"
        )
    return lines


def check_data(cfg: Config, load: Loader, say: Callable[[str], None]) -> Dataset:
    """Check the data before anything is started: loads it, builds the crop cache, splits
    the folds and fetches pretrained weights a run would need (`say`: what it is doing)."""
    from dfu_tui.data.schema import is_metadata_branch
    from dfu_tui.engine.folds import run_folds
    from dfu_tui.engine.plan import branches_of

    images = [b for b in branches_of(cfg) if not is_metadata_branch(b)]
    dataset = load(cfg, images)
    run_folds(cfg, dataset.table)
    for m in images:
        if dataset.crops[m].samples_with_images() == 0:
            raise InputError(f"{dataset.root}: modality '{m}' has no usable images")
    if images and cfg.image_model.weights == "imagenet":
        from dfu_tui.engine.pretrained import ensure_pretrained_weights

        say(f"checking the {cfg.image_model.backbone} ImageNet weights ...")
        ensure_pretrained_weights(cfg.image_model.backbone, cfg.data.image_size)
    return dataset


def create_run(
    runs_dir: Path, cfg: Config, dataset: Dataset, labels: Labels, config_file: str
) -> RunDir:
    """A new run folder with its config, labels, feature list and fingerprint; a run that
    could not be set up leaves nothing behind."""
    run = create_run_dir(runs_dir, cfg)
    try:
        if labels != Labels():  # a file only when there is something to say
            write_labels(run.path, labels)
        write_features(run, cfg, dataset)
        save_fingerprint(run.fingerprint, {**run_fingerprint(cfg), "config_file": config_file})
    except BaseException as exc:
        shutil.rmtree(run.path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(run.path)) from None
        raise
    return run
