"""A full disk (issue 10, item 11), on a real 3 MB tmpfs: one line, exit 1, a final event
where one can still be written, nothing half-made, and a resume once space is back."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dfu_tui.runs.state import load_state
from tests.helpers import run_dfu, set_args

SETS = [
    "modalities.use=['metadata']",
    "radar.enabled=false",
    "cv.folds=3",
    "metadata_model.n_estimators=40",
]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache"), "DFU_TUI_HEARTBEAT": "1"}


def sets(data: Path) -> list[str]:
    # one worker process: the subject is the disk, not parallel tasks; the session's demo
    return ["--jobs", "1", *set_args([f"data.root='{data}'", *SETS])]


def test_demo_data_on_a_full_disk(small_disk: Path, env) -> None:
    proc = run_dfu(env, "demo-data", str(small_disk / "demo"), "--patients", "40")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {small_disk / 'demo'}: No space left on device"
    ]
    assert sorted(p.name for p in small_disk.iterdir()) == []  # no partial folder


@pytest.mark.slow
def test_run_on_a_full_disk_leaves_no_run(small_disk: Path, env, small_demo_master: Path) -> None:
    fill(small_disk, 0)
    runs = small_disk / "runs"
    proc = run_dfu(
        env, "run", "configs/default.toml", "--runs-dir", str(runs), *sets(small_demo_master)
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "No space left on device" in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
def test_a_run_that_fills_the_disk_fails_then_resumes(
    small_disk: Path, env, small_demo_master: Path
) -> None:
    filler = fill(small_disk, 24_000)  # room for the run's files, not its predictions
    runs = small_disk / "runs"
    proc = run_dfu(
        env, "run", "configs/default.toml", "--runs-dir", str(runs), *sets(small_demo_master)
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (run,) = runs.iterdir()
    state = load_state(run)
    assert state.status == "failed" and "No space left on device" in state.reason
    assert not list(run.rglob(".*.tmp"))  # no temporary file left
    status = run_dfu(env, "status", str(run), "--json")
    assert json.loads(status.stdout)["status"] == "failed"
    filler.unlink()  # space is back
    resumed = run_dfu(env, "resume", str(run), "--jobs", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert load_state(run).status == "completed"


@pytest.mark.parametrize("command", ["export", "report"])
def test_export_and_report_on_a_full_disk_exit_1_naming_the_path(
    small_disk: Path, env, command: str
) -> None:
    import shutil

    from tests.tui.conftest import COMPLETED, FIXTURES

    run = Path(shutil.copytree(FIXTURES / COMPLETED, Path(env["DFU_TUI_CACHE_DIR"]) / COMPLETED))
    fill(small_disk, 0)
    target = small_disk / f"out.{command}"
    proc = run_dfu(env, command, str(run), "--output", str(target))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {target}: No space left on device"]
    assert not target.exists() and not list(small_disk.glob(".*.tmp"))  # nothing half-made
