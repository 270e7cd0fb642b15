"""Damaged run files (issue 10, items 8 and 9): bad event lines and bad prediction files are
skipped or re-run, never a traceback, in every consumer (status, export, resume, dashboard)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dfu_tui.runs.events import EventReader, EventWriter
from dfu_tui.runs.state import load_state
from tests.helpers import on_screen, run_dfu, until
from tests.tui.conftest import COMPLETED, FIXTURES, make_app

BAD_LINES = {
    "not UTF-8": b'{"v":1,"kind":"heartbeat","ts":1.0,"x":"\xff\xfe"}\n',
    "bare number": b"42\n",
    "no kind": b'{"v":1}\n',
    "unknown kind": b'{"v":1,"kind":"party","ts":1.0}\n',
    "NUL bytes": b"\x00" * 40 + b"\n",
    "list": b"[1, 2, 3]\n",
    "fold without fields": b'{"v":1,"kind":"fold_finished","ts":1.0,"fold":9}\n',
    "fold with a bad combination": (
        b'{"v":1,"kind":"fold_finished","ts":1.0,"fold":9,"branches":{},'
        b'"combinations":[{"modalities":["metadata"]}]}\n'
    ),
    "epoch without task": b'{"v":1,"kind":"epoch","ts":1.0,"epoch":1}\n',
    "string timestamp": b'{"v":1,"kind":"heartbeat","ts":"soon"}\n',
    "flag without rule": b'{"v":1,"kind":"flag","ts":1.0,"scope":"fold"}\n',
    # well-formed lines with a field of the wrong type (issue 20): skipped and counted too
    "task as a list": b'{"v":1,"kind":"task_started","ts":1.0,"task":[1,2]}\n',
    "heartbeat period as text": (
        b'{"v":1,"kind":"run_resumed","ts":1.0,"heartbeat":"5","pending":[]}\n'
    ),
    "level as a list": (
        b'{"v":1,"kind":"flag","ts":1.0,"rule":"x","level":["collapse"],"detail":"d"}\n'
    ),
    "kappa as text": (
        b'{"v":1,"kind":"fold_finished","ts":1.0,"fold":9,"branches":{},"combinations":'
        b'[{"modalities":["metadata"],"kappa":"high","quadratic_kappa":0.1,"f1":{},'
        b'"predicted_share":{},"true_share":{},"flags":[]}]}\n'
    ),
    "fold as text": b'{"v":1,"kind":"branch_finished","ts":1.0,"task":"fold1-x","fold":"1"}\n',
    "pid as text": b'{"v":1,"kind":"heartbeat","ts":1.0,"pid":"12"}\n',
    "tasks as text": (
        b'{"v":1,"kind":"run_started","ts":1.0,"folds":2,"combinations":[],"tasks":"a"}\n'
    ),
    "epoch loss as a dict": (
        b'{"v":1,"kind":"epoch","ts":1.0,"task":"fold1-x","fold":1,"branch":"x","epoch":1,'
        b'"max_epochs":3,"loss":{"a":1}}\n'
    ),
    "share as text": (
        b'{"v":1,"kind":"epoch","ts":1.0,"task":"fold1-x","fold":1,"branch":"x","epoch":1,'
        b'"max_epochs":3,"val_predicted_share":{"I":"most"}}\n'
    ),
    "flags not a list": (
        b'{"v":1,"kind":"fold_finished","ts":1.0,"fold":9,"branches":{"m":{"kappa":0.1,'
        b'"quadratic_kappa":0.1,"f1":{},"predicted_share":{},"true_share":{},"flags":"x"}},'
        b'"combinations":[]}\n'
    ),
    "version as text": b'{"v":"1","kind":"heartbeat","ts":1.0}\n',
}


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """The committed completed run with every kind of bad line inserted in its log."""
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED)
    log = runs / COMPLETED / "events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    log.write_bytes(b"".join([*lines[:middle], *BAD_LINES.values(), *lines[middle:]]))
    return runs / COMPLETED


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_reader_skips_and_counts_each_bad_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("heartbeat", pid=1)
    with open(path, "ab") as fh:
        fh.write(BAD_LINES[name])
    writer.emit("heartbeat", pid=2)
    writer.close()
    state = load_state(tmp_path)
    assert state.skipped == 1
    assert state.last_heartbeat is not None


def test_a_torn_last_line_is_ended_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"v":1,"kind":"heartbeat","ts":1.0,"pid":1}\n{"v":1,"kind":"heartb')
    writer = EventWriter(path)  # e.g. the supervisor of a resume
    writer.emit("heartbeat", pid=2)
    writer.close()
    reader = EventReader(path)
    assert [e["pid"] for e in reader.read_new()] == [1, 2]
    assert reader.skipped == 1


def test_state_of_a_damaged_log_is_the_same_run(damaged: Path) -> None:
    state = load_state(damaged)
    clean = load_state(FIXTURES / COMPLETED)
    assert state.skipped == len(BAD_LINES)
    assert state.status == clean.status == "completed"
    assert state.fold_results == clean.fold_results
    assert state.to_dict()["skipped_event_lines"] == len(BAD_LINES)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}


def test_status_and_export_survive_a_damaged_log(damaged: Path, env: dict[str, str]) -> None:
    status = run_dfu(env, "status", str(damaged), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["skipped_event_lines"] == len(BAD_LINES)
    for fmt in ("csv", "json"):
        out = run_dfu(env, "export", str(damaged), "--format", fmt, "--output", "-")
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    table = run_dfu(env, "status", "--runs-dir", str(damaged.parent))
    assert table.returncode == 0 and "Traceback" not in table.stderr


async def test_dashboard_opens_a_damaged_run_and_says_so(damaged: Path) -> None:
    from textual.widgets import Static

    from dfu_tui.tui.screens.monitor import MonitorScreen

    app = make_app(damaged.parent)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_run(COMPLETED)
        await on_screen(pilot, "MonitorScreen")
        assert isinstance(app.screen, MonitorScreen)
        header = str(app.screen.query_one("#monitor-header", Static).render())
        assert f"{len(BAD_LINES)} damaged log line(s) skipped" in header
        await pilot.press("c")
        await pilot.pause()
    assert app.return_code in (None, 0)


DAMAGE = {
    "truncated": lambda b: b[: len(b) // 2],
    "not a zip": lambda b: b"hello, not a zip file" * 10,
    "empty": lambda b: b"",
    "flipped bytes": lambda b: b[:200] + bytes(x ^ 0xFF for x in b[200:400]) + b[400:],
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_predictions_file_is_invalid_not_fatal(tmp_path: Path, how: str) -> None:
    from dfu_tui.runs.rundir import DamagedPredictions, RunDir, load_predictions
    from dfu_tui.runs.tasks import output_valid

    run = tmp_path / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    target = run / "predictions" / "fold1_metadata.npz"
    target.write_bytes(DAMAGE[how](target.read_bytes()))
    assert not output_valid(RunDir(run), "fold1-metadata")
    assert output_valid(RunDir(run), "fold2-metadata")
    with pytest.raises(DamagedPredictions, match="fold1_metadata.npz: damaged predictions"):
        load_predictions(target)


async def test_compare_survives_a_damaged_predictions_file(tmp_path: Path) -> None:
    from textual.widgets import Static

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED)
    target = runs / COMPLETED / "predictions" / "fold2_thermal_map.npz"
    target.write_bytes(target.read_bytes()[:100])
    app = make_app(runs)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_compare(COMPLETED)
        await on_screen(pilot, "CompareScreen")
        screen = app.screen

        def title() -> str:
            return str(screen.query_one("#curve-title", Static).render())

        await until(pilot, lambda: "no stored probabilities to draw the fusion-weight" in title())
        assert "damaged predictions file" in title()


def _variants(p: dict) -> dict[str, dict]:
    import numpy as np

    def nan_cell(a):
        a = a.copy()
        a[0, 1] = np.nan  # part of a row: not "no image"
        return a

    def scaled(a):
        return a * 2.0

    return {
        "3 rows for the fold": {
            **p,
            "val_index": p["val_index"][:3],
            "val_label": p["val_label"][:3],
            "val_proba": p["val_proba"][:3],
        },
        "a NaN probability": {**p, "val_proba": nan_cell(p["val_proba"])},
        "probabilities above 1": {**p, "val_proba": scaled(p["val_proba"])},
        "a label 7": {**p, "val_label": np.where(p["val_label"] == 0, 7, p["val_label"])},
        "float indices": {**p, "val_index": p["val_index"].astype(float)},
        "two columns": {**p, "train_proba": p["train_proba"][:, :2]},
        "text probabilities": {**p, "val_proba": p["val_proba"].astype(str)},
        "another fold's rows": {**p, "val_index": p["val_index"] + 1},
    }


VARIANTS = [
    "3 rows for the fold",
    "a NaN probability",
    "probabilities above 1",
    "a label 7",
    "float indices",
    "two columns",
    "text probabilities",
    "another fold's rows",
]


@pytest.mark.parametrize("how", VARIANTS)
def test_a_predictions_file_with_wrong_content_is_trained_again(tmp_path: Path, how: str) -> None:
    """Right keys, wrong content: rejected where it enters (was never re-run, and failed
    every later resume)."""
    import numpy as np

    from dfu_tui.engine.folds import Fold
    from dfu_tui.runs.rundir import RunDir, load_predictions
    from dfu_tui.runs.tasks import output_valid

    shutil.copytree(FIXTURES / COMPLETED, tmp_path / COMPLETED)
    run = RunDir(tmp_path / COMPLETED)
    path = run.prediction_file(1, "metadata")
    good = load_predictions(path)
    fold = Fold(1, good["train_index"], good["val_index"])
    assert output_valid(run, "fold1-metadata", fold)
    np.savez(path, **_variants(good)[how])
    assert not output_valid(run, "fold1-metadata", fold)


@pytest.mark.parametrize(
    "damage", ["changed", "wrong shape", "not a probability", "a link", "a FIFO", "huge"]
)
def test_an_unfinished_fits_inner_rows_are_taken_back_only_as_saved(
    tmp_path: Path, damage: str
) -> None:
    """The inner out-of-fold rows a stopped `fit` kept are taken back on resume only when
    they are the file it listed, of the fold's shape and probabilities (missing where a visit
    has no image); anything else (changed, grown huge, replaced by a link or a FIFO) is made
    again, never read through or waited on."""
    import numpy as np

    from dfu_tui.runs.model import InnerRows

    record: dict = {"run": "r", "combination": ["metadata", "thermal_map"], "files": {}}
    rows = np.random.default_rng(0).dirichlet([1, 1, 1], 7)
    rows[2] = np.nan  # a visit without a thermal image
    InnerRows(tmp_path, record).put("thermal_map-1", rows)
    saved = json.loads((tmp_path / "fit-progress.json").read_text())
    again = InnerRows(tmp_path, saved)  # a resumed fit reads its progress file
    kept = again.get("thermal_map-1", (7, 3))
    assert kept is not None and np.array_equal(kept, rows, equal_nan=True)
    assert again.get("thermal_map-2", (7, 3)) is None  # never made
    path = tmp_path / ".inner-thermal_map-1.npy"
    if damage == "changed":
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "wrong shape":
        assert again.get("thermal_map-1", (8, 3)) is None
        return
    elif damage == "not a probability":
        bad = rows.copy()
        bad[0, 0] = np.inf
        again.put("thermal_map-1", bad)
    elif damage == "huge":  # the listed file with a gigabyte after it: read no further
        with path.open("ab") as fh:
            fh.truncate(path.stat().st_size + (1 << 30))
    elif damage == "a link":
        other = tmp_path / "elsewhere.npy"
        os.replace(path, other)
        path.symlink_to(other)
    else:
        path.unlink()
        os.mkfifo(path)
    assert again.get("thermal_map-1", (7, 3)) is None
    again.clear()
    assert not path.exists() and not path.is_symlink()
