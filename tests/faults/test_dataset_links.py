"""Symlinks and permissions inside a dataset (issue 10, item 12): skipped and named, or one
line and exit 2, always before a run directory exists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import run_dfu

BASE = ["--set", "cv.folds=2", "--set", "modalities.use=['metadata','thermal_map']"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}


def validate(env, root: Path, *extra: str):
    return run_dfu(
        env, "validate", "configs/default.toml", "--set", f"data.root='{root}'", *BASE, *extra
    )


def test_links_and_odd_entries_are_skipped_and_named(tiny_demo: Path, env) -> None:
    folder = tiny_demo / "Thermal_Map_IMG"
    real = sorted(folder.iterdir())[0]
    outside = tiny_demo.parent / "outside.png"
    shutil.copy(real, outside)
    (folder / "loop_a.png").symlink_to(folder / "loop_b.png")
    (folder / "loop_b.png").symlink_to(folder / "loop_a.png")
    (folder / "900_P001001ATLZ.png").symlink_to(tiny_demo / "nowhere.png")  # dangling
    (folder / "901_P001001ATLZ.png").mkdir()  # a folder named like an image
    (folder / "self").symlink_to(folder)  # not an image name: ignored
    os.replace(real, tiny_demo.parent / "moved.png")
    real.symlink_to(tiny_demo.parent / "moved.png")  # a valid link: used
    proc = validate(env, tiny_demo)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    for name in ("loop_a.png", "loop_b.png", "900_P001001ATLZ.png", "901_P001001ATLZ.png"):
        assert name in text, name
    assert "unreadable file or link 4" in text
    assert real.name not in proc.stderr  # the good link is not skipped
    strict = validate(env, tiny_demo, "--strict")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr


def test_an_image_folder_that_is_a_file_stops_before_a_run_exists(
    tiny_demo: Path, env, tmp_path: Path
) -> None:
    shutil.rmtree(tiny_demo / "Thermal_Map_IMG")
    (tiny_demo / "Thermal_Map_IMG").write_text("not a folder")
    runs = tmp_path / "runs"
    proc = run_dfu(
        env,
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs),
        "--set",
        f"data.root='{tiny_demo}'",
        *BASE,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "Thermal_Map_IMG" in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
@pytest.mark.parametrize("what", ["folder", "box", "image"])
def test_unreadable_parts(tiny_demo: Path, env, what: str) -> None:
    target = {
        "folder": tiny_demo / "Thermal_Map_IMG",
        "box": tiny_demo / "bounding_box_thermal.csv",
        "image": sorted((tiny_demo / "Thermal_Map_IMG").iterdir())[0],
    }[what]
    os.chmod(target, 0)
    try:
        proc = validate(env, tiny_demo)
        assert "Traceback" not in proc.stderr
        assert proc.returncode == (0 if what == "image" else 2)
        assert target.name in proc.stdout + proc.stderr
    finally:
        os.chmod(target, 0o700)
