"""Files shared between processes and folders that are not ours (issue 10, items 2 and 13):
the demo dataset and crop cache under concurrency and after a killed writer; modes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dfu_tui.data.demo import COMPLETE_MARKER
from tests.helpers import ROOT, run_dfu, run_dfu_at_once

DEMO = ["--set", "demo.patients=12", "--set", "modalities.use=['metadata','thermal_map']"]


def demo_folder(cache: Path) -> Path:
    (folder,) = [p for p in (cache / "demo").iterdir() if not p.name.startswith(".")]
    return folder


def counts(folder: Path) -> dict[str, int]:
    return {d.name: sum(1 for _ in d.iterdir()) for d in sorted(folder.iterdir()) if d.is_dir()}


def test_concurrent_preparation_gives_one_whole_dataset(tmp_path: Path) -> None:
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}
    results = run_dfu_at_once(env, "validate", "configs/default.toml", *DEMO, times=3)
    assert all(p.returncode == 0 for p in results), [p.stderr for p in results]
    folder = demo_folder(tmp_path / "cache")
    assert (folder / COMPLETE_MARKER).is_file()
    assert not list((tmp_path / "cache" / "demo").glob("*.partial"))
    for base in ("cache", "cache/demo", "cache/crops"):  # created by us: private
        assert stat.S_IMODE((tmp_path / base).stat().st_mode) == 0o700, base
    # the same as one writer alone
    alone = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "alone")}
    assert run_dfu(alone, "validate", "configs/default.toml", *DEMO).returncode == 0
    assert counts(folder) == counts(demo_folder(tmp_path / "alone"))


def test_a_killed_writer_leaves_nothing_that_is_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(cache)}
    assert run_dfu(env, "validate", "configs/default.toml", *DEMO).returncode == 0
    folder = demo_folder(cache)
    whole = counts(folder)
    # a half-written dataset: marker missing, most images gone; and a killed writer's folder
    (folder / COMPLETE_MARKER).unlink()
    for png in sorted((folder / "Thermal_Map_IMG").iterdir())[5:]:
        png.unlink()
    partial = cache / "demo" / f".{folder.name}.abc123.partial"
    partial.mkdir()
    (partial / "junk.png").write_bytes(b"x")
    # and a damaged crop cache file
    for npz in (cache / "crops").rglob("*.npz"):
        npz.write_bytes(npz.read_bytes()[:50])
    proc = run_dfu(env, "validate", "configs/default.toml", *DEMO)
    assert proc.returncode == 0, proc.stderr
    assert counts(folder) == whole and (folder / COMPLETE_MARKER).is_file()
    assert not partial.exists()
    assert "Traceback" not in proc.stderr


def test_we_never_change_the_mode_of_a_folder_we_did_not_create(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_dfu(env, "demo-data", str(shared / "new" / "demo"), "--patients", "6")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "new").stat().st_mode) == 0o700  # created by us
    demo = shared / "new" / "demo"
    modes = {stat.S_IMODE(p.stat().st_mode) for p in demo.rglob("*") if p.is_file()}
    assert modes == {0o600}
    # demo-data into a folder of the current directory leaves the current directory alone
    cwd = tmp_path / "work"
    cwd.mkdir(mode=0o755)
    os.chmod(cwd, 0o755)
    subprocess.run(
        [sys.executable, "-m", "dfu_tui", "demo-data", "here", "--patients", "6"],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    assert stat.S_IMODE(cwd.stat().st_mode) == 0o755
    # a runs folder that exists keeps its mode; the cache's base folders are private
    runs = tmp_path / "runs"
    runs.mkdir()
    os.chmod(runs, 0o755)
    from dfu_tui.paths import private_dir

    private_dir(runs / "x")
    assert stat.S_IMODE(runs.stat().st_mode) == 0o755
    shutil.rmtree(shared)


@pytest.mark.parametrize("existing", ["file", "nonempty"])
def test_demo_data_refuses_a_target_it_would_clobber(tmp_path: Path, existing: str) -> None:
    target = tmp_path / "t"
    if existing == "file":
        target.write_text("x")
    else:
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    proc = run_dfu(dict(os.environ), "demo-data", str(target))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert target.exists() and (existing == "file" or (target / "keep.txt").read_text() == "mine")
