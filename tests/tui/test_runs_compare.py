"""Runs a user can find and put side by side: names and tags in the list, filter by tag,
space marks runs, `c` compares the marked runs (paired only where the folds match)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from textual.widgets import DataTable

from dfu_tui.cli import main
from dfu_tui.runs.compare_runs import NOT_PAIRED, compare_runs
from dfu_tui.runs.rundir import RunDir
from dfu_tui.tui.screens.runs import RunsScreen
from dfu_tui.tui.screens.runs_compare import RunsCompareScreen
from tests.helpers import until
from tests.tui.conftest import CANCELLED, COMPLETED, make_app

TWIN = "20261128-140000-beef01"  # a copy of the completed run: the same folds


def twin(runs_dir: Path) -> Path:
    """A second run on the same folds as COMPLETED, with another fusion setting and other
    fold kappas (its fold results shifted by 0.05)."""
    target = runs_dir / TWIN
    shutil.copytree(runs_dir / COMPLETED, target)
    lines = []
    for line in (target / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "fold_finished":
            for c in e["combinations"]:  # this log predates same-row scores
                c["quadratic_kappa"] -= 0.05 * e["fold"]
        lines.append(json.dumps(e))
    (target / "events.jsonl").write_text("\n".join(lines) + "\n")
    (target / "summary.json").unlink()
    config = (target / "config.toml").read_text().replace("seed = 0", "seed = 5", 1)
    (target / "config.toml").write_text(config)
    return target


class TestRunsSideBySide:
    def test_paired_only_where_folds_match(self, runs_dir: Path) -> None:
        twin(runs_dir)
        doc = compare_runs([RunDir(runs_dir / COMPLETED), RunDir(runs_dir / TWIN)])
        ref, other = doc["runs"]
        assert ref["versus"]["note"] == "reference"
        assert other["versus"]["paired"] and other["versus"]["folds"] == 2
        assert abs(other["versus"]["mean_difference"] + 0.075) < 1e-9  # -(0.05 + 0.10) / 2
        assert doc["differing_keys"] == ["demo.seed"]
        assert other["differs"] == {"demo.seed": 5}
        # a run on other folds (another split of other patients) is never paired
        doc = compare_runs([RunDir(runs_dir / COMPLETED), RunDir(runs_dir / CANCELLED)])
        assert doc["runs"][1]["versus"] == {"paired": False, "note": NOT_PAIRED}
        assert "mean_difference" not in doc["runs"][1]["versus"]

    def test_a_damaged_prediction_file_pairs_nothing(self, runs_dir: Path) -> None:
        target = twin(runs_dir)
        for f in (target / "predictions").glob("fold1_*.npz"):
            f.write_bytes(b"not a zip")
        doc = compare_runs([RunDir(runs_dir / COMPLETED), RunDir(target)])
        assert doc["runs"][1]["versus"]["note"] == NOT_PAIRED

    def test_command_line(self, runs_dir: Path, capsys) -> None:
        twin(runs_dir)
        args = ["compare", COMPLETED, TWIN, CANCELLED, "--runs-dir", str(runs_dir)]
        assert main([*args, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [r["run_id"] for r in doc["runs"]] == [COMPLETED, TWIN, CANCELLED]
        assert main([*args, "--csv"]) == 0
        head, *rows = capsys.readouterr().out.splitlines()
        assert head.startswith("run,QWK mean [95% CI] n,vs first (paired)") and len(rows) == 3
        assert NOT_PAIRED in rows[2]
        assert main(["compare", COMPLETED, "--runs-dir", str(runs_dir)]) == 2

    async def test_mark_and_compare_in_the_dashboard(self, runs_dir: Path) -> None:
        twin(runs_dir)
        assert main(["tag", TWIN, "--runs-dir", str(runs_dir), "--name", "seed five"]) == 0
        assert main(["tag", TWIN, "--runs-dir", str(runs_dir), "--add", "ablation"]) == 0
        app = make_app(runs_dir)
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            await until(pilot, lambda: table.row_count == 3)
            assert str(table.get_cell(TWIN, "name")) == "seed five"
            assert str(table.get_cell(TWIN, "tags")) == "#ablation"
            # filter by tag
            await pilot.press("slash", *"#ablation", "enter")
            assert [str(k.value) for k in table.rows] == [TWIN]
            await pilot.press("escape")
            assert table.row_count == 3
            # a tag added from the command line while the list is shown appears in it
            main(["tag", COMPLETED, "--runs-dir", str(runs_dir), "--add", "baseline"])
            await until(pilot, lambda: str(table.get_cell(COMPLETED, "tags")) == "#baseline")
            # mark two runs with space, compare them with c
            ids = [str(k.value) for k in table.rows]
            table.move_cursor(row=ids.index(TWIN))
            await pilot.press("space")
            table.move_cursor(row=ids.index(COMPLETED))
            await pilot.press("space")
            assert str(table.get_cell(TWIN, "")) == "✓"
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, RunsCompareScreen))
            screen = app.screen
            assert isinstance(screen, RunsCompareScreen)
            await until(pilot, lambda: screen.doc is not None)
            compared = screen.query_one("#runs-compare", DataTable)
            assert compared.row_count == 2
            assert [str(k.value) for k in compared.rows] == [COMPLETED, TWIN]  # oldest first
            assert "≈ not distinguishable" in str(compared.get_row_at(1)[2]) or "worse" in str(
                compared.get_row_at(1)[2]
            )
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)


class TestArchive:
    def test_archive_and_restore(self, runs_dir: Path, capsys) -> None:
        args = ["--runs-dir", str(runs_dir)]
        before = sorted(p.name for p in (runs_dir / COMPLETED).rglob("*"))
        assert main(["archive", COMPLETED, *args]) == 0
        assert "restore" in capsys.readouterr().out
        assert not (runs_dir / COMPLETED).exists()
        assert (runs_dir / ".trash" / COMPLETED / "events.jsonl").is_file()
        assert main(["status", *args]) == 0
        assert COMPLETED not in capsys.readouterr().out  # gone from the lists
        assert main(["restore", *args]) == 0
        assert capsys.readouterr().out.split() == [COMPLETED]
        assert main(["restore", COMPLETED, *args]) == 0
        assert sorted(p.name for p in (runs_dir / COMPLETED).rglob("*")) == before
        assert main(["restore", COMPLETED, *args]) == 2  # nothing archived under that id
        assert main(["restore", "../x", *args]) == 2

    def test_a_running_run_is_never_archived(self, runs_dir: Path) -> None:
        from dfu_tui.runs.supervisor import RunLock

        lock = RunLock(RunDir(runs_dir / CANCELLED))
        lock.acquire()  # as its supervisor holds it
        try:
            assert main(["archive", CANCELLED, "--runs-dir", str(runs_dir)]) == 2
        finally:
            lock.release()
        assert (runs_dir / CANCELLED / "events.jsonl").is_file()

    async def test_the_dashboard_archives_with_confirmation(self, runs_dir: Path) -> None:
        from dfu_tui.tui.screens.modals import ConfirmScreen

        app = make_app(runs_dir)
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            await until(pilot, lambda: table.row_count == 2)
            table.move_cursor(row=[str(k.value) for k in table.rows].index(CANCELLED))
            await pilot.press("delete")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # no: nothing moves
            assert (runs_dir / CANCELLED).is_dir()
            await pilot.press("delete")
            await pilot.press("y")
            await until(pilot, lambda: table.row_count == 1, 60)
            assert (runs_dir / ".trash" / CANCELLED).is_dir()
            # restored from the command line: back in the list
            assert main(["restore", CANCELLED, "--runs-dir", str(runs_dir)]) == 0
            await until(pilot, lambda: table.row_count == 2)


async def test_the_form_names_and_tags_a_run(runs_dir: Path) -> None:
    from textual.widgets import Input, Static

    from dfu_tui.tui.screens.launch import label_arguments
    from tests.helpers import open_form

    app = make_app(runs_dir)
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot)
        form.query_one("#run-name", Input).value = "fixed vs alpha"
        form.query_one("#run-tags", Input).value = "#ablation, v2"
        await pilot.pause()
        assert label_arguments(form.values()) == [
            "--name",
            "fixed vs alpha",
            "--tag",
            "ablation",
            "--tag",
            "v2",
        ]
        form.query_one("#run-tags", Input).value = "bad/tag"
        errors = form.query_one("#errors", Static)
        await until(pilot, lambda: "--tag" in str(errors.render()))
        assert form.query_one("#launch").disabled


async def test_t_names_and_tags_a_run_from_the_list(runs_dir: Path) -> None:
    from textual.widgets import Input

    from dfu_tui.runs.labels import read_labels
    from dfu_tui.tui.screens.modals import LabelsScreen

    main(["tag", CANCELLED, "--runs-dir", str(runs_dir), "--add", "old", "--add", "keep"])
    app = make_app(runs_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await until(pilot, lambda: str(table.get_cell(CANCELLED, "tags")) == "#old #keep")
        table.move_cursor(row=[str(k.value) for k in table.rows].index(CANCELLED))
        await pilot.press("t")
        assert isinstance(app.screen, LabelsScreen)
        app.screen.query_one("#labels-name", Input).value = "collapsed depth"
        tags = app.screen.query_one("#labels-tags", Input)
        tags.value = "keep #new"
        tags.focus()
        await pilot.press("enter")
        await until(pilot, lambda: str(table.get_cell(CANCELLED, "name")) == "collapsed depth", 60)
        assert str(table.get_cell(CANCELLED, "tags")) == "#keep #new"
    assert read_labels(runs_dir / CANCELLED).tags == ("keep", "new")


class TestUntrustedLabelsAndTrash:
    def test_labels_that_are_not_a_small_regular_file_are_ignored(self, runs_dir: Path) -> None:
        import os
        import threading

        from dfu_tui.runs.labels import labels_path, read_labels

        run = runs_dir / COMPLETED
        target = runs_dir / "elsewhere.json"
        target.write_text(json.dumps({"name": "planted", "tags": ["x"]}))
        labels_path(run).symlink_to(target)  # a link: not followed
        assert read_labels(run).name == ""
        labels_path(run).unlink()
        os.mkfifo(labels_path(run))  # a FIFO: never waited on
        done = threading.Event()

        def read() -> None:
            read_labels(run)
            done.set()

        threading.Thread(target=read, daemon=True).start()
        assert done.wait(5)
        labels_path(run).unlink()
        labels_path(run).write_text(json.dumps({"name": "x" * 100_000}))  # huge
        assert read_labels(run).name == ""
        labels_path(run).write_text(json.dumps({"name": 3, "tags": ["ok", 4, "bad tag"]}))
        assert read_labels(run).name == "" and read_labels(run).tags == ("ok",)
        # tagging replaces the link itself, never writes through it
        labels_path(run).unlink()
        labels_path(run).symlink_to(target)
        assert main(["tag", COMPLETED, "--runs-dir", str(runs_dir), "--add", "mine"]) == 0
        assert json.loads(target.read_text())["name"] == "planted"
        assert not labels_path(run).is_symlink()

    def test_a_trash_that_is_a_link_is_refused(self, runs_dir: Path, tmp_path: Path) -> None:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (runs_dir / ".trash").symlink_to(elsewhere)
        assert main(["archive", COMPLETED, "--runs-dir", str(runs_dir)]) == 2
        assert (runs_dir / COMPLETED / "events.jsonl").is_file()
        assert list(elsewhere.iterdir()) == []
        (runs_dir / ".trash").unlink()
        (runs_dir / ".trash").write_text("a file")
        assert main(["archive", COMPLETED, "--runs-dir", str(runs_dir)]) == 2
        assert (runs_dir / COMPLETED / "events.jsonl").is_file()
