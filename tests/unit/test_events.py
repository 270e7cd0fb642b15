"""The event log: appends, the incremental reader, folding into state, and compatibility."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dfu_tui.runs.events import SCHEMA_VERSION, EventReader, EventWriter
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import RunState, RunWatcher, load_state

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "events_v1.jsonl"


def test_reader_waits_for_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("heartbeat", pid=1)
    writer.emit("heartbeat", pid=2)
    writer.close()
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"kind":"heartbeat","ts":3.0,"pi')
    reader = EventReader(path)
    assert [e["pid"] for e in reader.read_new()] == [1, 2]
    assert reader.read_new() == []
    with open(path, "ab") as fh:
        fh.write(b'd":3}\n')
    assert [e["pid"] for e in reader.read_new()] == [3]


def test_reader_reads_only_new_bytes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    reader = EventReader(path)
    assert reader.read_new() == []
    writer.emit("message", text="a")
    first = reader.offset
    writer.emit("message", text="b")
    assert [e["text"] for e in reader.read_new()] == ["a", "b"]
    assert reader.offset > first
    writer.close()


def test_nan_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("epoch", task="fold1-x", fold=1, branch="x", loss=float("nan"))
    writer.close()
    event = json.loads(path.read_text())
    assert event["loss"] is None and event["v"] == SCHEMA_VERSION


def test_committed_v1_log_still_replays(tmp_path: Path) -> None:
    """A real log of schema version 1 (a run killed with -9 and resumed) folds into state."""
    run = tmp_path / FIXTURE.stem
    run.mkdir()
    shutil.copy(FIXTURE, run / "events.jsonl")
    state = load_state(run)
    assert state.status == "completed"
    assert state.folds_done == state.folds == 2
    assert len(state.done) == len(state.tasks) == 6
    assert state.effective_status() == "completed"
    assert set(state.mean_kappa()) == {"+".join(c) for c in state.combinations}
    doc = state.to_dict()
    assert doc["tasks_done"] == 6 and doc["eta_s"] is None


def test_watcher_applies_events_once(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    lines = FIXTURE.read_text().splitlines(keepends=True)
    (run / "events.jsonl").write_text("".join(lines[:10]))
    watcher = RunWatcher(run)
    assert len(watcher.refresh()) == 10
    with open(run / "events.jsonl", "a") as fh:
        fh.write("".join(lines[10:]))
    assert len(watcher.refresh()) == len(lines) - 10
    assert watcher.state.status == load_state(run).status


def test_stale_after_two_heartbeats() -> None:
    state = RunState("r")
    state.apply(
        {
            "kind": "run_started",
            "ts": 100.0,
            "folds": 2,
            "combinations": [],
            "tasks": [],
            "heartbeat": 5.0,
        }
    )
    assert state.effective_status(now=109.0) == "running"
    assert state.effective_status(now=111.0) == "stale"
    state.apply({"kind": "heartbeat", "ts": 110.0})
    assert state.effective_status(now=111.0) == "running"


def test_eta_counts_the_running_image_task_from_its_epochs() -> None:
    """The first image task runs long after the quick metadata tasks: the ETA must not stay
    at the metadata tasks' seconds (it showed 0:12 for 40 s, then jumped to 4:37)."""
    tasks = [f"fold{k}-{b}" for k in (1, 2) for b in ("metadata", "thermal_map")]
    state = RunState("r")
    state.apply(
        {
            "kind": "run_started",
            "ts": 0.0,
            "folds": 2,
            "combinations": [],
            "tasks": tasks,
            "jobs": 1,
        }
    )
    state.apply({"kind": "task_started", "ts": 0.0, "task": "fold1-metadata"})
    state.apply({"kind": "branch_finished", "ts": 6.0, "task": "fold1-metadata", "seconds": 6.0})
    state.apply({"kind": "task_started", "ts": 6.0, "task": "fold1-thermal_map"})
    state.apply(
        {
            "kind": "epoch",
            "ts": 46.0,
            "task": "fold1-thermal_map",
            "fold": 1,
            "branch": "thermal_map",
            "epoch": 2,
            "max_epochs": 20,
        }
    )
    eta = state.eta(now=46.0)
    # thermal: 20 s/epoch x 20 epochs = 400 s each; 360 s left on the running one, 400 for
    # fold 2's, and 6 s for fold 2's metadata
    assert eta == 360 + 400 + 6
    later = state.eta(now=106.0)
    assert later == eta - 60


def test_every_logged_field_has_a_typed_definition() -> None:
    """The events of committed real runs (and the v1 fixture) use only the fields their
    kind's TypedDict declares, and carry every required one."""
    from dfu_tui.runs.records import EVENT_TYPES

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    logs = [fixtures / "events_v1.jsonl", *sorted((fixtures / "runs").glob("*/events.jsonl"))]
    seen = set()
    for log in logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            e = json.loads(line)
            typed = EVENT_TYPES[e["kind"]]
            declared = typed.__required_keys__ | typed.__optional_keys__  # type: ignore[attr-defined]
            assert set(e) <= declared, (log.name, e["kind"], set(e) - declared)
            assert typed.__required_keys__ <= set(e), (log.name, e["kind"])  # type: ignore[attr-defined]
            seen.add(e["kind"])
    assert {"run_started", "epoch", "fold_finished", "flag", "run_finished"} <= seen


def test_epoch_plots_name_the_inner_split_size_when_the_log_does() -> None:
    """An inner-validation kappa or share on 17 samples is not one on 170: the epoch plots
    say n when the epochs carry it (logs written before `val_n` existed say nothing)."""
    from dfu_tui.runs.figures import epoch_figure, share_figure

    def state_with(**extra: object) -> RunState:
        state = RunState("r")
        state.apply({"kind": "run_started", "ts": 0.0, "folds": 1, "combinations": [], "tasks": []})
        state.apply({"kind": "task_started", "ts": 0.0, "task": "fold1-depth_map"})
        for epoch in (1, 2):
            state.apply(
                {
                    "kind": "epoch",
                    "ts": float(epoch),
                    "task": "fold1-depth_map",
                    "fold": 1,
                    "branch": "depth_map",
                    "epoch": epoch,
                    "max_epochs": 5,
                    "loss": 1.0,
                    "train_kappa": 0.1,
                    "val_kappa": 0.2,
                    "val_predicted_share": {"I": 0.2, "P": 0.5, "R": 0.3},
                    "val_true_share": {"I": 0.2, "P": 0.6, "R": 0.2},
                    **extra,
                }
            )
        return state

    with_n, without = state_with(val_n=17), state_with()
    assert "early-stopping split n=17" in epoch_figure(with_n, "fold1-depth_map").title
    assert "early-stopping split n=17" in share_figure(with_n, "fold1-depth_map").title
    for figure in (
        epoch_figure(without, "fold1-depth_map"),
        share_figure(without, "fold1-depth_map"),
    ):
        assert "n=" not in figure.title


def test_messages_reach_the_console_and_the_monitor_log(tmp_path: Path) -> None:
    """A retried task or orphans ended on resume are told in a `message` event: the
    foreground console prints it and the monitor's log shows it (markup escaped)."""
    import io

    from rich.console import Console

    from dfu_tui.config import load_config
    from dfu_tui.console import RunConsole
    from dfu_tui.tui.panels.events import event_line

    text = "task fold1-thermal_map started again on node b [attempt 2]"
    out = io.StringIO()
    console = RunConsole(Console(file=out, width=200), load_config(None), RunDir(tmp_path))
    console.on_event({"kind": "message", "text": text})
    assert out.getvalue().strip() == text
    line = event_line({"kind": "message", "text": text})
    assert line is not None and "\\[attempt 2]" in line


def test_elapsed_counts_only_the_time_a_run_was_running() -> None:
    def state(*events: tuple[str, float]) -> RunState:
        s = RunState("r")
        for kind, ts in events:
            extra = {"folds": 1, "tasks": [], "combinations": [["metadata"]]}
            s.apply({"kind": kind, "ts": ts, **(extra if kind == "run_started" else {})})
        return s

    # stopped after 10 s, resumed 90 s later, finished 30 s after that
    stopped = state(
        ("run_started", 0.0),
        ("heartbeat", 5.0),
        ("run_cancelled", 10.0),
        ("run_resumed", 100.0),
        ("run_finished", 130.0),
    )
    assert stopped.elapsed(now=1000.0) == 40.0
    # killed (no final event) after its heartbeat at 20 s; resumed at 500 s, running now
    killed = state(("run_started", 0.0), ("heartbeat", 20.0), ("run_resumed", 500.0))
    assert killed.elapsed(now=503.0) == 23.0
    # a stale run's clock stops at its last heartbeat
    stale = state(("run_started", 0.0), ("heartbeat", 20.0))
    assert stale.elapsed(now=400.0) == 20.0


def test_rankings_use_the_common_reference_and_keys_name_their_scale() -> None:
    """The issue's case in a log: metadata+thermal_map at 0.554 on its 425 rows against
    metadata at 0.526 on 488, but metadata scores 0.544 on those 425 rows; thermal_map alone
    scores higher on its own rows than it does against metadata on common rows."""
    from dfu_tui.runs.state import RunState

    def combo(name: list[str], own: float, n: int, mine: float, ref: float) -> dict:
        return {
            "modalities": name,
            "kappa": own - 0.2,
            "quadratic_kappa": own,
            "n": n,
            "flags": [],
            "paired": {"n": n, "fused": {"quadratic_kappa": own, "kappa": own - 0.2}},
            "reference": {
                "name": "metadata",
                "n": n,
                "fused": {"quadratic_kappa": mine, "kappa": mine},
                "reference": {"quadratic_kappa": ref, "kappa": ref},
            },
        }

    state = RunState("r")
    state.metric = "quadratic_kappa"
    state.combinations = [["metadata"], ["metadata", "thermal_map"], ["thermal_map"]]
    folds = []
    for k in (1, 2):
        folds.append(
            {
                "fold": k,
                "fold_kind": "cv",
                "combinations": [
                    combo(["metadata"], 0.526, 244, 0.526, 0.526),
                    combo(["metadata", "thermal_map"], 0.554, 212, 0.554, 0.544),
                    combo(["thermal_map"], 0.570, 212, 0.371, 0.544),
                ],
            }
        )
    state.fold_results = folds  # type: ignore[assignment]
    best = state.best()
    assert best is not None and best.name == "metadata+thermal_map"  # not thermal_map, 0.570
    assert best.versus == pytest.approx(0.010) and best.reference == "metadata"
    assert state.best_kappa_text() == "0.554 (+0.010) n=424 best of 3"
    doc = state.to_dict()
    assert doc["best_mean_quadratic_kappa"] == 0.554
    assert doc["best_versus_reference_quadratic_kappa"] == pytest.approx(0.01)
    assert doc["best_reference"] == "metadata" and "common rows" in doc["best_ranked_by"]
    assert "mean_kappa" not in doc and "best_mean_kappa" not in doc
    assert set(doc["mean_unweighted_kappa_all_rows"]) == {
        "metadata",
        "metadata+thermal_map",
        "thermal_map",
    }


def test_flags_of_a_torn_fold_are_not_counted_twice_after_a_resume(tmp_path: Path) -> None:
    """A fold's flags were logged, its `fold_finished` line was torn by a kill; the resume
    scores the fold again with its flags again: the fold has its flags once."""
    from dfu_tui.runs.events import EventWriter

    run = tmp_path / "r"
    run.mkdir()
    writer = EventWriter(run / "events.jsonl")
    writer.emit("run_started", folds=1, combinations=[["metadata"]], tasks=["fold1-metadata"])
    flag = {"scope": "fold", "fold": 1, "rule": "dominant_class", "level": "warning"}
    writer.emit("flag", detail="P 0.7", **flag)
    writer.close()
    with open(run / "events.jsonl", "ab") as fh:
        fh.write(b'{"v":1,"kind":"fold_finished","ts":2.0,"fold":1,"bra')  # torn
    writer = EventWriter(run / "events.jsonl")
    writer.emit("run_resumed", pending=[])
    writer.emit("flag", detail="P 0.7", **flag)
    metrics = {
        "n": 3,
        "kappa": 0.1,
        "quadratic_kappa": 0.2,
        "f1": {},
        "predicted_share": {},
        "true_share": {},
        "flags": [],
    }
    writer.emit(
        "fold_finished",
        fold=1,
        branches={"metadata": metrics},
        combinations=[{"modalities": ["metadata"], **metrics}],
    )
    writer.close()
    state = load_state(run)
    assert state.skipped == 1  # the torn line
    assert len(state.fold_flags[1]) == 1
    assert state.flag_counts() == {"collapse": 0, "warning": 1}


def test_a_log_read_in_small_chunks_gives_the_same_state(tmp_path: Path, monkeypatch) -> None:
    """The reader applies a log chunk by chunk (bounded memory for a long log): any chunk
    size gives the same state, and a line longer than a whole chunk is skipped, counted."""
    import dfu_tui.runs.state as state_module
    from tests.tui.conftest import COMPLETED, FIXTURES

    run = tmp_path / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    full = load_state(run)
    whole = full.to_dict(now=0)
    lines = (run / "events.jsonl").read_bytes().splitlines(keepends=True)
    longest = max(len(x) for x in lines)
    monkeypatch.setattr(state_module, "CHUNK", longest + 1)
    assert load_state(run).to_dict(now=0) == whole
    monkeypatch.setattr(state_module, "CHUNK", 300)  # some lines now longer than a chunk
    chunked = load_state(run)
    overlong = sum(1 for x in lines if len(x) > 300)  # with its newline, above a chunk
    assert chunked.skipped == overlong > 0
    # every short line was read: heartbeats, flags and the final event
    assert chunked.last_heartbeat == full.last_heartbeat and chunked.status == "completed"
    assert len(chunked.flags) == len(full.flags)


def test_a_state_without_history_has_the_same_status_in_bounded_memory(tmp_path: Path) -> None:
    """`status`, `stop` and `resume` read a state without its epochs and event log: the same
    status, ranking and flags, and nothing kept per epoch or per event."""
    from tests.tui.conftest import COMPLETED, FIXTURES

    run = tmp_path / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    full, light = load_state(run), load_state(run, history=False)
    assert full.epochs and full.log
    assert light.epochs == [] and light.log == []
    assert light.to_dict(now=0) == full.to_dict(now=0)
    assert light.flag_counts() == full.flag_counts() and light.best() == full.best()


def test_the_dashboards_reader_keeps_the_same_state_in_chunks(tmp_path: Path, monkeypatch) -> None:
    """The catalog reads a log chunk by chunk and keeps only the last of consecutive
    heartbeats: the state is the one `load_state` builds."""
    import dfu_tui.runs.catalog as catalog_module
    from dfu_tui.runs.catalog import RunCatalog
    from dfu_tui.runs.events import EventWriter
    from tests.tui.conftest import COMPLETED, FIXTURES

    runs = tmp_path / "runs"
    run = runs / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    writer = EventWriter(run / "events.jsonl")
    for pid in range(500):  # a long tail of heartbeats
        writer.emit("heartbeat", pid=pid)
    writer.close()
    longest = max(len(x) for x in (run / "events.jsonl").read_bytes().splitlines(True))
    monkeypatch.setattr(catalog_module, "CHUNK", longest + 1)  # many chunks, no line cut
    catalog = RunCatalog(runs)
    catalog.refresh()
    assert catalog.states[COMPLETED].to_dict(now=0) == load_state(run).to_dict(now=0)
    assert catalog.states[COMPLETED].last_heartbeat == load_state(run).last_heartbeat


def test_every_event_kind_has_one_place_in_the_state() -> None:
    """A kind either changes the state through its one method or is only logged: a new kind
    must be given one or the other."""
    from dfu_tui.runs.events import KINDS
    from dfu_tui.runs.state import APPLY, LOG_ONLY

    assert not set(APPLY) & set(LOG_ONLY)
    assert set(APPLY) | set(LOG_ONLY) == set(KINDS)


def test_every_event_kind_is_typed_and_described_once() -> None:
    """Each kind has its typed definition (whose `kind` is that literal) and its one
    description, which the console, the monitor's log and the notifications all read."""
    from typing import get_args, get_type_hints

    from dfu_tui.runs.describe import DESCRIBE
    from dfu_tui.runs.events import KINDS
    from dfu_tui.runs.records import EVENT_TYPES

    assert set(DESCRIBE) == set(KINDS)
    for kind, typed in EVENT_TYPES.items():
        assert get_args(get_type_hints(typed)["kind"]) == (kind,)


def test_the_console_the_monitor_and_the_notifications_say_the_same(tmp_path: Path) -> None:
    """Every event of the fixture runs described: a fold's COLLAPSE flag reads the same in
    the console, the monitor's log line and the toast, which goes to a user not watching the
    run; a failure is told to everyone."""
    import io

    from rich.console import Console

    from dfu_tui.config import load_config
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.describe import ALWAYS, AWAY, QUIET, describe
    from dfu_tui.tui.panels.events import event_line

    fixtures = Path(__file__).parents[1] / "fixtures"
    events = [
        e
        for log in sorted(fixtures.glob("*runs/*/events.jsonl"))
        for e in EventReader(log).read_new()
    ]
    assert {e["kind"] for e in events} >= {"flag", "fold_finished", "epoch"}
    collapses = [e for e in events if e["kind"] == "flag" and e.get("scope") == "fold"]
    collapses = [e for e in collapses if e["level"] == "collapse"]
    assert collapses
    for flag in collapses:
        (line,) = describe(flag)
        assert line.notice == AWAY and line.tone == "error"
        assert line.head == f"COLLAPSE {flag['rule']}" and line.text == flag["detail"]
        out = io.StringIO()
        RunConsole(Console(file=out, width=400), load_config(None), RunDir(tmp_path)).on_event(flag)
        assert out.getvalue().strip() == line.plain()
        shown = event_line(flag)
        assert shown is not None and f"COLLAPSE {flag['rule']}" in shown
    failed = {"v": 1, "kind": "run_failed", "ts": 1.0, "reason": "task fold1-metadata failed"}
    assert [x.notice for x in describe(failed)] == [ALWAYS]
    assert all(x.notice == QUIET for e in events if e["kind"] == "epoch" for x in describe(e))
    assert all(event_line(e) is None for e in events if e["kind"] in ("epoch", "heartbeat"))


def test_the_eta_is_a_range_that_narrows_and_says_when_it_cannot_tell() -> None:
    """No evidence for a kind of task: `estimating`. A running image task gives a range from
    one more epoch to its whole budget; its finished siblings then bound the rest; spread
    over the jobs but never below the longest single task."""
    from dfu_tui.tui.format import eta_text

    tasks = [f"fold{k}-{b}" for k in (1, 2, 3) for b in ("metadata", "thermal_map")]
    state = RunState("r")
    state.apply(
        {
            "kind": "run_started",
            "ts": 0.0,
            "folds": 3,
            "combinations": [],
            "tasks": tasks,
            "jobs": 2,
        }
    )
    state.apply({"kind": "task_started", "ts": 0.0, "task": "fold1-metadata"})
    assert state.eta_range(now=1.0) is None and eta_text(state, 1.0) == "estimating"
    state.apply({"kind": "branch_finished", "ts": 5.0, "task": "fold1-metadata", "seconds": 5.0})
    state.apply({"kind": "task_started", "ts": 5.0, "task": "fold1-thermal_map"})
    assert state.eta_range(now=6.0) is None  # no image epoch yet: nothing to go on
    epoch = {"kind": "epoch", "task": "fold1-thermal_map", "fold": 1, "branch": "thermal_map"}
    state.apply({**epoch, "ts": 25.0, "epoch": 2, "max_epochs": 20})
    low, high = state.eta_range(now=25.0) or (0, 0)
    # 10 s per epoch: each thermal task 30 s (3 epochs) to 200 s; the running one has run 20
    assert low < high and high >= 180
    state.apply({"kind": "heartbeat", "ts": 25.0, "pid": 1})  # alive, not stale
    assert "–" in eta_text(state, 25.0)
    state.apply(
        {"kind": "branch_finished", "ts": 105.0, "task": "fold1-thermal_map", "seconds": 100.0}
    )
    state.apply({"kind": "task_started", "ts": 105.0, "task": "fold2-thermal_map"})
    narrow = state.eta_range(now=105.0) or (0, 0)
    assert narrow[1] - narrow[0] < high - low  # evidence narrows it
    assert narrow[0] >= 100 * 0.8  # never below the longest single task left
    state.apply({"kind": "run_finished", "ts": 300.0, "status": "completed"})
    assert state.eta_range(now=300.0) is None and eta_text(state, 300.0) == "-"


def test_an_unchanged_log_is_not_read_again_and_a_moved_offset_is(tmp_path: Path) -> None:
    """The reader stats the log and reads only when it changed; moving its offset by hand
    (a follower starting over) reads again."""
    from dfu_tui.runs import events as events_module
    from dfu_tui.runs.events import EventReader, EventWriter

    log = tmp_path / "events.jsonl"
    writer = EventWriter(log)
    writer.emit("heartbeat", pid=1)
    reader = EventReader(log)
    assert [e["kind"] for e in reader.read_new()] == ["heartbeat"]
    opened: list[int] = []
    real = events_module.read_regular

    def counting(path: Path, offset: int = 0, limit: int | None = None) -> bytes:
        opened.append(1)
        return real(path, offset, limit)

    events_module.read_regular = counting
    try:
        assert reader.read_new() == [] and opened == []  # unchanged: only a stat
        writer.emit("heartbeat", pid=2)
        assert [e["pid"] for e in reader.read_new()] == [2] and len(opened) == 1
        reader.offset = 0
        assert [e["pid"] for e in reader.read_new()] == [1, 2] and len(opened) == 2
    finally:
        events_module.read_regular = real
        writer.close()
