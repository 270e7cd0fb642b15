"""A run directory: resolved config, events, per-(fold, branch) predictions, results."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from dfu_tui.config import Config
from dfu_tui.errors import InputError

if TYPE_CHECKING:
    from dfu_tui.data.dataset import Dataset
from dfu_tui.paths import (
    PRIVATE_FILE_MODE,
    atomic_write,
    atomic_write_text,
    private_dir,
    require_own_dir,
)

RESULTS_COLUMNS = (
    "Modalities",
    "Accuracy Mean",
    "Accuracy Std",
    "Macro F1 Mean",
    "Macro F1 Std",
    "Weighted F1 Mean",
    "Weighted F1 Std",
    "I F1 Mean",
    "P F1 Mean",
    "R F1 Mean",
    "Kappa Mean",
    "Kappa Std",
    "Quadratic Kappa Mean",
    "Quadratic Kappa Std",
)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    def prediction_file(self, fold: int, branch: str) -> Path:
        return self.predictions / f"fold{fold}_{branch}.npz"

    @property
    def results(self) -> Path:
        return self.path / "results.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def fit_heartbeat(self) -> Path:
        """Rewritten every heartbeat by a detached `dfu-tui fit` while it runs."""
        return self.path / "fit-heartbeat.json"

    @property
    def digest(self) -> Path:
        """What the runs list shows of a finished run (`runs.digest`)."""
        return self.path / "digest.json"

    @property
    def features(self) -> Path:
        return self.path / "features.json"

    @property
    def log(self) -> Path:
        return self.path / "worker.log"

    @property
    def lock(self) -> Path:
        return self.path / "lock"

    @property
    def export(self) -> Path:
        """Where the dashboard's `e` and `dfu-tui export` write the run's CSV."""
        return self.export_file("csv")

    def export_file(self, fmt: str) -> Path:
        """Where `dfu-tui export` writes by default: `export.csv` or `export.json`."""
        return self.path / f"export.{fmt}"

    @property
    def fingerprint(self) -> Path:
        return self.path / "fingerprint.json"

    @property
    def logs(self) -> Path:
        """Each task's own log (`logs/<task>.log`)."""
        return self.path / "logs"

    @property
    def stop_request(self) -> Path:
        """Left by `stop` for a resume that is starting (`supervisor.request_stop`)."""
        return self.path / "stop.request"

    @property
    def report(self) -> Path:
        """Where `dfu-tui report` writes the run's HTML report by default."""
        return self.path / "report.html"

    def is_run(self) -> bool:
        """Whether this folder holds a run (its event log exists and can be seen)."""
        try:
            return self.events.is_file()
        except OSError:  # a folder we may not enter (another user's run): not ours to read
            return False

    def unreadable(self) -> bool:
        """Whether this is a run folder (named like a run id) we may not look into (another
        user's run, 0700): listed as "not readable", never read or touched."""
        if not RUN_ID.fullmatch(self.path.name):
            return False
        try:
            self.events.stat()
        except PermissionError:
            return True
        except OSError:
            return False
        return False


RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def create_run_dir(runs_dir: Path, cfg: Config) -> RunDir:
    """A new private run directory holding the resolved config."""
    private_dir(runs_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = runs_dir / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    run = RunDir(path)
    try:
        private_dir(run.predictions)
        atomic_write_text(run.config, cfg.to_toml())
        # The log exists from the start, so readers (status, the dashboard) see the run.
        os.close(os.open(run.events, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    except OSError as exc:  # e.g. a full disk: no half-made run directory is left
        shutil.rmtree(path, ignore_errors=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return run


def features_document(cfg: Config, dataset: Dataset) -> dict[str, Any]:
    """The metadata features a run uses, what was left out and why, and what is compared."""
    from dfu_tui.data.schema import FEATURE_GROUPS

    table = dataset.table
    compare = cfg.features.compare
    return {
        "used": list(table.feature_columns) if "metadata" in cfg.modalities.use else [],
        "excluded": table.excluded,
        "history": cfg.features.history,
        "compare": compare,
        "compare_drops": [c for c in FEATURE_GROUPS.get(compare, ()) if c in table.feature_columns],
        "extra_columns": table.extra_columns,
    }


def write_features(run: RunDir, cfg: Config, dataset: Dataset) -> None:
    """features.json: the resolved feature list of the run."""
    doc = features_document(cfg, dataset)
    atomic_write_text(run.features, json.dumps(doc, indent=2) + "\n")


def save_predictions(path: Path, **arrays: np.ndarray) -> None:
    """Write a prediction file atomically, as plain arrays (no pickle)."""

    def write(fh: IO[bytes]) -> None:
        np.savez(fh, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


class DamagedPredictions(ValueError):
    """A predictions file that cannot be read back whole."""


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    """Read a prediction file (pickle refused); a missing file raises FileNotFoundError, a
    damaged one (truncated, not a zip, bad member) DamagedPredictions."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise DamagedPredictions(f"{path}: damaged predictions file ({exc})") from None


def write_summary(run: RunDir, summary: dict[str, Any]) -> None:
    """summary.json and results.csv, each written atomically."""
    atomic_write_text(run.summary, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(RESULTS_COLUMNS)

    def cell(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    for combo in summary["combinations"]:
        m, s = combo["mean"], combo["std"]
        writer.writerow(
            [
                "+".join(combo["modalities"]),
                *(cell(v) for v in (m["accuracy"], s["accuracy"], m["macro_f1"], s["macro_f1"])),
                *(cell(v) for v in (m["weighted_f1"], s["weighted_f1"])),
                *(cell(m[f"f1_{c}"]) for c in "IPR"),
                *(cell(v) for v in (m["kappa"], s["kappa"])),
                *(cell(v) for v in (m["quadratic_kappa"], s["quadratic_kappa"])),
            ]
        )
    atomic_write_text(run.results, buf.getvalue())


#: A short id is never shorter than the date and the hour of the run's start.
SHORT_ID = 11


def short_ids(ids: list[str]) -> dict[str, str]:
    """Each run id's shortest prefix (of at least `SHORT_ID` characters) that no other of
    `ids` starts with: what `status` prints, and every command takes back."""
    ordered = sorted(set(ids))  # a prefix another id shares is shared with a neighbour

    def common(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    out = {}
    for i, run_id in enumerate(ordered):
        shared = max(
            common(run_id, ordered[i - 1]) if i > 0 else 0,
            common(run_id, ordered[i + 1]) if i + 1 < len(ordered) else 0,
        )
        out[run_id] = run_id[: min(len(run_id), max(SHORT_ID, shared + 1))]
    return out


def own_run(run: RunDir) -> RunDir:
    """The run, once its folder is checked to be this user's (before writing into it or
    acting on its processes); another user's folder is one line, exit 2."""
    require_own_dir(run.path)
    return run


def resolve_run(name: str, runs_dir: Path) -> RunDir:
    """A run given by its directory, its id in the runs directory, or a unique id prefix.

    The name is taken literally: no glob patterns (`*`, `?`, `[`), and an id or prefix has
    no path separator; anything else is "no such run".
    """

    def is_run(path: Path) -> bool:
        try:
            run = RunDir(path)
            return run.is_run() or run.config.is_file()
        except OSError:
            return False

    if is_run(Path(name)):
        return RunDir(Path(name))
    plain = bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name
    if plain and is_run(runs_dir / name):
        return RunDir(runs_dir / name)
    matches = []
    if plain:
        try:
            entries = list(os.scandir(runs_dir))
        except OSError:
            entries = []
        matches = sorted(
            Path(e.path) for e in entries if e.name.startswith(name) and is_run(Path(e.path))
        )
    if len(matches) == 1:
        return RunDir(matches[0])
    shown = name
    if len(matches) > 1:
        raise InputError(f"{runs_dir}: run id prefix '{shown}' matches {len(matches)} runs")
    raise InputError(f"{runs_dir}: no run '{shown}'")
