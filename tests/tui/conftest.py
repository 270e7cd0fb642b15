"""Dashboard fixtures: committed run directories from real runs, a fixed clock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import REFRESH, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "runs"

COMPLETED = "20261128-133808-50f261"  # metadata, depth_rgb, thermal_map; search; 2 folds
CANCELLED = "20261128-133945-3b5598"  # metadata + depth_map, stopped after fold 1 (collapse)
FIXED_NOW = 1795873200.0
# Two real runs on the same folds: fixed fusion scoring all four strategies, and learned alpha
STRATEGY_FIXTURES = ROOT / "tests" / "fixtures" / "strategy_runs"
STRATEGIES = "20261130-173807-a2b67d"
LEARNED = "20261130-173840-a8169a"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    target = tmp_path / "runs"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def strategy_runs(tmp_path: Path) -> Path:
    target = tmp_path / "strategy-runs"
    shutil.copytree(STRATEGY_FIXTURES, target)
    return target


def make_app(runs_dir: Path):
    from dfu_tui.tui.app import DfuApp

    return DfuApp(runs_dir, ROOT / "configs" / "default.toml", REFRESH, lambda: FIXED_NOW)


def svg_text(svg: str) -> list[str]:
    """The characters of a Textual SVG screenshot, row by row (colours left out)."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    pattern = r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>'
    for m in re.finditer(pattern, svg):
        text = html.unescape(m[3]).replace("\xa0", " ")
        rows.setdefault(float(m[2]), []).append((float(m[1]), text))
    lines = []
    for y in sorted(rows):
        line: list[str] = []
        for x, text in sorted(rows[y]):
            column = round(x / 12.2)  # Textual's cell width in its SVGs
            line.extend(" " * (column + len(text) - len(line)))
            line[column : column + len(text)] = text
        lines.append("".join(line).rstrip())
    return lines


@pytest.fixture
def snap_compare(snap_compare, request: pytest.FixtureRequest, tmp_path_factory):
    """The plugin's comparison, plus two things it lacks:

    - a screenshot must not show where this checkout or the test's temporary folder lives
      (a path there makes the picture differ from machine to machine, as a wrapped line or
      a longer text);
    - on a mismatch, the rows that differ are printed as text, so a CI log says what changed.
    """
    import difflib
    import pickle

    from pytest_textual_snapshot import node_to_report_path

    def compare(app, **kwargs) -> bool:
        same = snap_compare(app, **kwargs)
        _, expected_svg, actual_svg, *_ = pickle.loads(
            node_to_report_path(request.node).read_bytes()
        )
        actual = svg_text(actual_svg)
        shown = "\n".join(actual)
        for place in (ROOT, tmp_path_factory.getbasetemp(), Path.home()):
            if str(place) != "/" and str(place) in shown:
                pytest.fail(f"the screenshot shows a machine-dependent path: {place}")
        if not same:
            expected = svg_text(expected_svg) if expected_svg else []
            diff = "\n".join(
                difflib.unified_diff(expected, actual, "snapshot", "now", lineterm="", n=1)
            )
            print(diff or "same characters: the colours or styles differ")
        return same

    return compare
