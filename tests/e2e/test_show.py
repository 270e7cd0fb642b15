"""Looking at a finished run changes nothing: `show`, `status`, `report`, `export`, `resume`
and the dashboard leave every file of it byte for byte as it was."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from dfu_tui.cli import main
from dfu_tui.tui.app import DfuApp
from dfu_tui.tui.screens.compare import CompareScreen
from dfu_tui.tui.screens.monitor import MonitorScreen
from tests.helpers import REFRESH, set_args, until
from tests.tui.conftest import CANCELLED, COMPLETED, FIXED_NOW, FIXTURES, ROOT


def digests(run: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(run)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


async def test_looking_at_a_finished_run_changes_nothing(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    run = runs / COMPLETED
    before = digests(run)
    assert main(["show", COMPLETED, "--runs-dir", str(runs)]) == 0
    shown = capsys.readouterr().out
    assert "completed" in shown and "Verdict" in shown and "quadratic kappa" in shown
    assert main(["status", "--runs-dir", str(runs)]) == 0
    assert (
        main(["export", COMPLETED, "--runs-dir", str(runs), "--output", str(tmp_path / "x")]) == 0
    )
    assert (
        main(["report", COMPLETED, "--runs-dir", str(runs), "--output", str(tmp_path / "r")]) == 0
    )
    capsys.readouterr()
    assert main(["resume", COMPLETED, "--runs-dir", str(runs)]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    app = DfuApp(runs, ROOT / "configs" / "default.toml", REFRESH, lambda: FIXED_NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: COMPLETED in app.catalog.states)
        app.open_run(COMPLETED)
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await pilot.pause()
        await until(
            pilot, lambda: "completed" in str(app.screen.query_one("#monitor-header").render())
        )
        app.open_compare(COMPLETED)
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause()
    assert digests(run) == before


def test_show_of_an_unfinished_run_says_so(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    before = digests(runs / CANCELLED)
    assert main(["show", CANCELLED, "--runs-dir", str(runs)]) == 0
    assert "cancelled, 1/3 folds; no summary yet" in capsys.readouterr().out
    assert digests(runs / CANCELLED) == before
    assert main(["show", "nope", "--runs-dir", str(runs)]) == 2


@pytest.mark.slow  # three real runs
def test_runs_on_other_folds_are_not_paired(tiny_demo_master: Path, tmp_path: Path) -> None:
    """Three real metadata-only runs: two on cv.seed 1 (other forest sizes) are paired by
    fold; the one on cv.seed 2 has other validation patients and is not."""
    import json as _json

    runs = tmp_path / "runs"
    base = [
        "--set",
        f"data.root='{tiny_demo_master}'",
        "--set",
        "modalities.use=['metadata']",
        "--set",
        "cv.folds=2",
        "--set",
        "radar.enabled=false",
        "--set",
        "metadata_model.n_estimators=30",
    ]
    made = []
    for extra in (["cv.seed=1"], ["cv.seed=1", "metadata_model.n_estimators=20"], ["cv.seed=2"]):
        sets = set_args(extra)
        assert (
            main(
                [
                    "run",
                    "configs/default.toml",
                    "--runs-dir",
                    str(runs),
                    "--jobs",
                    "1",
                    *base,
                    *sets,
                ]
            )
            == 0
        )
        made.append(sorted(p.name for p in runs.iterdir() if p.name not in made)[-1])
    from dfu_tui.runs.compare_runs import NOT_PAIRED, compare_runs
    from dfu_tui.runs.rundir import RunDir

    doc = compare_runs([RunDir(runs / r) for r in made])
    same, other = doc["runs"][1]["versus"], doc["runs"][2]["versus"]
    assert same["paired"] and same["folds"] == 2 and "mean_difference" in same
    assert same["note"] == "same folds, same rows"
    assert other == {"paired": False, "note": NOT_PAIRED}
    assert doc["differing_keys"] == ["cv.seed", "metadata_model.n_estimators"]
    assert (
        _json.dumps(doc["runs"][2]["differs"])
        == '{"cv.seed": 2, "metadata_model.n_estimators": 30}'
    )


def test_status_at_80_columns_shows_every_figure_and_a_whole_short_id(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """In an 80-column terminal `status` cuts nothing a user needs: each run's shortest
    unique id prefix is printed whole and every command takes it back; its figures and
    flags are on screen."""
    import io
    import json
    import re

    from rich.console import Console

    from dfu_tui.cli import term

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    shutil.copytree(FIXTURES.parent / "strategy_runs", runs, dirs_exist_ok=True)
    screen = io.StringIO()
    monkeypatch.setattr(term, "out", Console(file=screen, width=80, highlight=False))
    assert main(["status", "--runs-dir", str(runs)]) == 0
    lines = screen.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    ids = sorted(p.name for p in runs.iterdir())
    capsys.readouterr()
    for run_id in ids:
        (line,) = [ln for ln in lines if ln.split() and run_id.startswith(ln.split()[0])]
        short = line.split()[0]
        assert len(short) < len(run_id)
        assert not [o for o in ids if o != run_id and o.startswith(short)]
        assert re.search(r"\d+C \d+W", line), line  # the flags column is on screen
        assert main(["status", short, "--runs-dir", str(runs), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["run_id"] == run_id
    assert "QWK 0." in screen.getvalue() and "kappa 0." in screen.getvalue()


def test_export_writes_where_the_dashboards_e_does(tmp_path: Path, capsys) -> None:
    """`dfu-tui export RUN` and the dashboard's `e` agree: both write RUN/export.csv (JSON:
    export.json) and say where; `--output -` prints it; the same bytes either way."""
    from dfu_tui.runs.rundir import RunDir

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    run = RunDir(runs / COMPLETED)
    assert main(["export", COMPLETED, "--runs-dir", str(runs)]) == 0
    said = capsys.readouterr()
    assert said.out == "" and f"wrote {run.export}" in said.err
    written = run.export.read_bytes().decode("utf-8")
    assert written.startswith("combination") or "," in written.splitlines()[0]
    assert main(["export", COMPLETED, "--runs-dir", str(runs), "--output", "-"]) == 0
    assert capsys.readouterr().out == written
    assert main(["export", COMPLETED, "--runs-dir", str(runs), "--format", "json"]) == 0
    assert (runs / COMPLETED / "export.json").is_file()
    assert f"wrote {runs / COMPLETED / 'export.json'}" in capsys.readouterr().err
    assert main(["export", COMPLETED, "--runs-dir", str(runs)]) == 0
    assert f"replaced {run.export}" in capsys.readouterr().err
