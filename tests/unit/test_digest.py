"""A finished run's digest: the runs list from it equals the list from the whole log, a log
that changed or a digest that is not sound is read again, a screen gets the whole log."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dfu_tui.runs.catalog import RunCatalog
from dfu_tui.runs.digest import cached_digest, log_mark, read_digest, write_digest
from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import load_state
from dfu_tui.tui.screens.runs import run_row
from tests.tui.conftest import CANCELLED, COMPLETED, FIXED_NOW, FIXTURES


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    target = tmp_path / "runs"
    shutil.copytree(FIXTURES, target)
    return target


def rows(catalog: RunCatalog) -> dict[str, tuple[str, ...]]:
    return {r: run_row(catalog.state(r), FIXED_NOW) for r in catalog.ids()}


def test_a_finished_run_is_listed_from_its_digest_as_from_its_log(runs: Path) -> None:
    first = RunCatalog(runs)
    first.refresh()  # no digests yet: each log read once, without history, and digested
    for r in (COMPLETED, CANCELLED):  # into the user's cache: looking changes no run file
        assert cached_digest(RunDir(runs / r)).is_file() and not (runs / r / "digest.json").exists()
    assert not first.whole(COMPLETED) and first.state(COMPLETED).fold_results
    again = RunCatalog(runs)
    again.refresh()
    for run_id in (COMPLETED, CANCELLED):
        state = again.state(run_id)
        assert state.listing is not None and not state.fold_results  # the log was not read
    assert rows(again) == rows(first)  # state, best figure, flags, folds, tasks, elapsed
    assert again.mean_task_seconds() == first.mean_task_seconds()
    # a screen asks for the whole log: the next read gives it, history included
    again.want([COMPLETED])
    assert COMPLETED in again.refresh()
    assert again.whole(COMPLETED) and again.state(COMPLETED).epochs
    assert again.state(COMPLETED).to_dict(now=0) == load_state(runs / COMPLETED).to_dict(now=0)
    assert rows(again) == rows(first)


def test_a_log_that_changed_since_its_digest_is_read_again(runs: Path) -> None:
    RunCatalog(runs).refresh()
    writer = EventWriter(runs / CANCELLED / "events.jsonl")  # a resume began
    writer.emit("run_resumed", pid=1, pgid=1, jobs=1, heartbeat=5.0, pending=[])
    writer.close()
    catalog = RunCatalog(runs)
    catalog.refresh()
    state = catalog.state(CANCELLED)
    assert state.listing is None and state.status == "running" and catalog.whole(CANCELLED)


def test_a_digest_found_later_to_be_stale_gives_way_to_the_log(runs: Path, monkeypatch) -> None:
    """A run listed from its digest is resumed while the dashboard is open: its log is read
    again (finished runs are looked at every few reads)."""
    RunCatalog(runs).refresh()
    catalog = RunCatalog(runs)
    catalog.refresh()
    assert catalog.state(CANCELLED).listing is not None
    writer = EventWriter(runs / CANCELLED / "events.jsonl")
    writer.emit("run_resumed", pid=1, pgid=1, jobs=1, heartbeat=5.0, pending=[])
    writer.close()
    for _ in range(8):
        catalog.refresh()
    assert catalog.state(CANCELLED).status == "running"


@pytest.mark.parametrize(
    "damage",
    [
        "not json",
        "[]",
        '{"v": 2}',
        "nan-best",
        "bool-folds",
        "wrong-status",
        "running",
        "other-log",
        "huge",
        "extra-field",
        "link",
        "fifo",
    ],
)
def test_a_digest_that_is_not_sound_is_ignored(runs: Path, damage: str) -> None:
    run = runs / COMPLETED
    mark = log_mark(RunDir(run))
    assert mark is not None
    assert write_digest(RunDir(run), load_state(run, history=False), mark)  # as a supervisor
    digest = run / "digest.json"
    doc = json.loads(digest.read_text())
    text = {"not json": "{", "[]": "[]", '{"v": 2}': '{"v": 2}'}.get(damage)
    if damage == "nan-best":
        doc["state"]["ran"] = float("nan")
    elif damage == "bool-folds":
        doc["listing"]["folds_done"] = True
    elif damage == "wrong-status":
        doc["state"]["status"] = 3
    elif damage == "running":
        doc["state"]["status"] = "running"
    elif damage == "other-log":
        doc["log"][1] += 1
    elif damage == "extra-field":  # a key no state has: the digest is refused, not a crash
        doc["state"]["surprise"] = 1
    elif damage == "huge":
        doc["tasks"] = ["x" * 1000] * 2000
    digest.unlink()
    if damage == "link":
        (run / "elsewhere.json").write_text(json.dumps(doc))
        digest.symlink_to(run / "elsewhere.json")
    elif damage == "fifo":
        os.mkfifo(digest)
    else:
        digest.write_text(text if text is not None else json.dumps(doc))
    assert read_digest(RunDir(run), log_mark(RunDir(run))) is None  # type: ignore[arg-type]
    catalog = RunCatalog(runs)
    catalog.refresh()  # from the log, never hanging on a FIFO
    state = catalog.state(COMPLETED)
    assert state.listing is None and state.fold_results


def test_no_digest_for_a_run_that_is_not_ours_or_not_finished(runs: Path) -> None:
    run = RunDir(runs / COMPLETED)
    state = load_state(run.path, history=False)
    mark = log_mark(run)
    assert mark is not None
    if os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    os.chown(run.path, 12345, -1)  # another user's run folder (the tests run as root)
    try:
        assert not write_digest(run, state, mark) and not run.digest.exists()
        assert write_digest(run, state, mark, cached=True)  # the dashboard's own cache
    finally:
        os.chown(run.path, os.getuid(), -1)
    state.status = "running"
    assert not write_digest(run, state, mark)
    state.status = "completed"
    assert write_digest(run, state, mark) and read_digest(run, mark) is not None


def test_runs_without_digests_fill_the_list_newest_first(runs: Path, monkeypatch) -> None:
    """Hundreds of runs without a digest (the first start after an upgrade): each read
    spends a bounded time on new runs, newest first, and the next read goes on."""
    import dfu_tui.runs.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "FIRST_SIGHT_RUNS", 1)  # a screen of one row
    catalog = RunCatalog(runs)
    catalog.apply(catalog.read(budget=0.0))  # no time: one run per read
    assert catalog.ids() == [CANCELLED]  # the newer of the two (ids sort by time)
    catalog.apply(catalog.read(budget=0.0))
    assert catalog.ids() == [CANCELLED, COMPLETED]  # newest first
