"""Dashboard fixtures: committed run directories from real runs, a fixed clock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs"
ROOT = Path(__file__).resolve().parents[2]
COMPLETED = "20261128-133808-50f261"  # metadata, depth_rgb, thermal_map; search; 2 folds
CANCELLED = "20261128-133945-3b5598"  # metadata + depth_map, stopped after fold 1 (collapse)
FIXED_NOW = 1795873200.0


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    target = tmp_path / "runs"
    shutil.copytree(FIXTURES, target)
    return target


def make_app(runs_dir: Path):
    from dfu_tui.tui.app import DfuApp

    return DfuApp(runs_dir, ROOT / "configs" / "default.toml", clock=lambda: FIXED_NOW)
