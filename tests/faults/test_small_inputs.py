"""The smaller bad inputs of issue 10 (item 15): each a one-line error (exit 2) or a
skipped-and-named file, never a traceback, never a patient's values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import run_dfu
from tests.tui.conftest import COMPLETED, FIXTURES, make_app


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}


def one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_is_refused(tmp_path: Path, env, text: str) -> None:
    path = tmp_path / "empty.toml"
    path.write_text(text)
    one_line_error(run_dfu(env, "validate", str(path)), "empty.toml: the config is empty")


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("metadata_model.max_features='bogus'", "metadata_model.max_features"),
        ("metadata_model.min_samples_leaf=0", "metadata_model.min_samples_leaf"),
        ("metadata_model.max_depth=-1", "metadata_model.max_depth"),
        ("metadata_model.n_jobs=0", "metadata_model.n_jobs"),
        ("cv.inner_folds=50", "cv.inner_folds"),
    ],
)
def test_values_training_would_reject_are_refused_up_front(env, setting: str, key: str) -> None:
    proc = run_dfu(env, "validate", "configs/default.toml", "--set", setting)
    one_line_error(proc, key)


def test_a_wrong_label_column_never_prints_values(tiny_demo: Path, env) -> None:
    import pandas as pd

    proc = run_dfu(
        env,
        "validate",
        "configs/default.toml",
        "--set",
        f"data.root='{tiny_demo}'",
        "--set",
        "data.label_column='Age'",
    )
    one_line_error(proc, "column 'Age'", "that are not labels")
    ages = pd.read_csv(tiny_demo / "DataMaster_Processed_V12_WithMissing.csv")["Age"]
    assert not any(f"'{a}'" in proc.stderr or f"{a:.1f}" in proc.stderr for a in ages.dropna())


def test_a_huge_png_is_refused_before_decoding(tiny_demo: Path, env) -> None:
    folder = tiny_demo / "Thermal_Map_IMG"
    victim = sorted(folder.iterdir())[0]
    Image.new("L", (8000, 6000)).save(victim)  # 48 megapixels, a few KB on disk
    base = ["validate", "configs/default.toml", "--set", f"data.root='{tiny_demo}'"]
    base += ["--set", "cv.folds=2"]
    proc = run_dfu(env, *base)
    assert proc.returncode == 0, proc.stderr
    assert "8000x6000 pixels" in proc.stdout + proc.stderr
    one_line_error(run_dfu(env, *base, "--strict"))


def test_export_output_problems_are_one_line(tmp_path: Path, env) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED)
    run = str(runs / COMPLETED)
    one_line_error(
        run_dfu(env, "export", run, "--output", str(tmp_path / "missing" / "x.csv")),
        "does not exist",
    )
    one_line_error(run_dfu(env, "export", run, "--output", str(tmp_path)), "is a folder")
    ok = run_dfu(env, "export", run, "--output", str(tmp_path / "x.csv"))
    assert ok.returncode == 0 and (tmp_path / "x.csv").stat().st_size > 0


async def test_a_burst_of_keys_opens_each_screen_once(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    app = make_app(runs)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press(*["enter"] * 12)
        await pilot.pause()
        assert len(app.screen_stack) == 3  # default, runs list, one monitor
        await pilot.press("escape", *["n"] * 10)
        await pilot.pause()
        assert [type(s).__name__ for s in app.screen_stack][1:] == ["RunsScreen", "LaunchScreen"]


def test_a_dashboard_crash_exits_non_zero(tmp_path: Path, monkeypatch) -> None:
    from dfu_tui.tui import app as app_module

    def boom(self) -> None:
        raise RuntimeError("planted crash")

    monkeypatch.setattr(app_module.DfuApp, "on_mount", boom)
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    before = sorted(p.name for p in runs.rglob("*"))
    code = app_module.run_dashboard(runs, Path("configs/default.toml"), headless=True)
    assert code == 1
    assert sorted(p.name for p in runs.rglob("*")) == before
