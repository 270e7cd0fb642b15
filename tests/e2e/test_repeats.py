"""Repeated CV, the temporal hold-out and paired verdicts, with real runs of the metadata
branch (a fold trains in about a second): the summary, resume mid-repeat, and the monitor at
80x24 with 2 x 5 folds."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfu_tui.runs.state import load_state
from tests.helpers import REFRESH, detached_run, on_screen, run_dfu, wait_for

# one worker runs every test here: the module's run is made once, not once per worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("repeats")]

SETS = [
    "demo.patients=40",
    "modalities.use=['metadata']",
    "metadata_model.n_estimators=40",
    "radar.enabled=false",
    "cv.inner_folds=2",  # the forest's inner out-of-fold rows: the fewest folds
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    # stale half a second after two missed heartbeats (the fixture waits for that)
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(cache), "DFU_TUI_HEARTBEAT": "0.5"}


KILLED: dict[str, Any] = {}  # what the module's run had done when it was killed


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """2 repeats of 5 folds (10 folds: not exploratory) and a temporal hold-out, detached,
    its supervisor killed with SIGKILL in repeat 2, then resumed to completion (one run
    serves every test here)."""
    runs = tmp_path_factory.mktemp("runs")
    extra = ("cv.folds=5", "cv.repeats=2", "cv.strategy='temporal'")
    # one worker (and one on resume): the subject is the plan of tasks, not running two at once
    run = detached_run(env, runs, [*SETS, *extra], "--jobs", "1")
    wait_for(lambda: any(e["kind"] == "fold_finished" and e["fold"] >= 7 for e in events(run)))
    os.kill(int((run / "lock").read_text()), signal.SIGKILL)
    before = events(run)
    KILLED["done"] = {e["task"] for e in before if e["kind"] == "branch_finished"}
    KILLED["folds"] = {e["fold"]: e for e in before if e["kind"] == "fold_finished"}
    KILLED["started"] = sum(1 for e in before if e["kind"] == "task_started")
    wait_for(lambda: load_state(run).effective_status() == "stale", timeout=15)
    # the resume also sets a notify hook (a script that writes what it was given)
    hook = runs / "hook.py"
    hook.write_text(
        "import json, os, sys\n"
        "with open(os.environ['NOTIFIED'], 'a') as f:\n"
        "    f.write(json.dumps([sys.argv[1:], os.environ.get('DFU_TUI_RUN_TOKEN'),\n"
        "                        os.environ.get('DFU_TUI_RUN_STATE')]) + '\\n')\n"
    )
    notified = {**env, "NOTIFIED": str(runs / "notified.jsonl")}
    resumed = run_dfu(
        notified, "resume", str(run), "--jobs", "1", "--notify", f"{sys.executable} {hook}"
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return run


def events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line]


def test_every_repeat_fold_and_the_holdout_is_a_task(repeated: Path) -> None:
    started = next(e for e in events(repeated) if e["kind"] == "run_started")
    assert started["folds"] == 13 and started["repeats"] == 2 and started["folds_per_repeat"] == 5
    assert started["tasks"] == [f"fold{k}-metadata" for k in range(1, 14)]
    folds = [e for e in events(repeated) if e["kind"] == "fold_finished"]
    assert sorted(f["repeat"] for f in folds) == [0] * 3 + [1] * 5 + [2] * 5
    holdout = next(f for f in folds if f["fold_kind"] == "holdout")
    assert holdout["fold"] == 11
    # two tasks at a time: the case-mix folds may finish in either order
    assert sorted(f["fold"] for f in folds if f["fold_kind"] == "casemix") == [12, 13]
    state = load_state(repeated)
    assert [state.fold_name(k) for k in (10, 11, 12, 13)] == [
        "r2 fold 5",
        "hold-out",
        "case-mix 1",
        "case-mix 2",
    ]


def test_summary_names_its_scale_repeats_and_holdout(repeated: Path) -> None:
    summary = json.loads((repeated / "summary.json").read_text())
    assert summary["metric"] == "quadratic_kappa"
    (combo,) = summary["combinations"]
    assert combo["n_folds"] == 10 and len(combo["folds"]) == 10  # the hold-out is apart
    assert [r["repeat"] for r in combo["repeats"]] == [1, 2]
    assert all(r["folds"] == 5 for r in combo["repeats"])
    assert combo["verdict"]["metric"] == "quadratic_kappa"
    assert combo["verdict"]["criteria"][0]["name"].startswith("quadratic kappa > ")
    # the ± is a sample sd (n - 1) over the 10 folds
    values = [f["quadratic_kappa"] for f in combo["folds"]]
    mean = sum(values) / 10
    sd = (sum((v - mean) ** 2 for v in values) / 9) ** 0.5
    assert combo["std"]["quadratic_kappa"] == pytest.approx(sd)
    holdout = summary["holdout"]
    assert holdout["order"] == "Patient#" and holdout["n_val"] > 0
    row = holdout["combinations"][0]
    assert row["drift"] == pytest.approx(row["quadratic_kappa"] - row["cv_mean"])
    # a patient-bootstrap interval around the hold-out score, and the gap in two parts
    low, high = row["interval"]
    assert low < row["quadratic_kappa"] < high
    assert row["same_patients_cv"]["n"] == row["n"] == holdout["n_val"]
    assert row["case_mix"] + row["era"] == pytest.approx(row["drift"])
    verdict = combo["verdict"]
    assert verdict["holdout"]["confirmed"] == (row["quadratic_kappa"] > 0.2)
    assert not verdict["design"]["exploratory"]  # 10 folds
    proc = run_dfu({**os.environ}, "show", str(repeated))
    assert "Temporal hold-out: metadata QWK" in proc.stdout and "case mix" in proc.stdout


def test_holdout_patients_are_the_latest_and_never_in_cv(repeated: Path) -> None:
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine.folds import run_folds

    cfg = load_config(repeated / "config.toml")
    table = load_dataset(cfg.dataset, modalities=[]).table
    folds = run_folds(cfg, table)
    holdout = next(f for f in folds if f.kind == "holdout")
    held = set(table.patients[holdout.val])
    assert min(held) > max(set(table.patients) - held)
    for f in folds:
        assert not set(table.patients[f.train]) & set(table.patients[f.val])
        if f.kind == "cv":
            assert not held & set(table.patients[f.val]) and not held & set(table.patients[f.train])
    # the case-mix folds score exactly the held-out patients, by models that saw the rest
    mix = [f for f in folds if f.kind == "casemix"]
    assert len(mix) == 2 and set(table.patients[np.concatenate([f.val for f in mix])]) == held


def test_same_seed_and_repeat_give_the_same_folds(repeated: Path) -> None:
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine.folds import make_folds, run_folds

    cfg = load_config(repeated / "config.toml")
    table = load_dataset(cfg.dataset, modalities=[]).table
    a, b = run_folds(cfg, table), run_folds(cfg, table)
    assert all((x.val == y.val).all() and x.repeat == y.repeat for x, y in zip(a, b, strict=True))
    # repeats differ from each other
    assert any(
        (a[k].val != a[k + 5].val).any() for k in range(5) if len(a[k].val) == len(a[k + 5].val)
    ) or any(len(a[k].val) != len(a[k + 5].val) for k in range(5))
    # without a hold-out, repeat 1 is the plain seeded K-fold split of every sample
    whole = make_folds(table.labels, table.patients, 5, cfg.cv.seed)
    import dataclasses

    plain = run_folds(
        dataclasses.replace(cfg, cv=dataclasses.replace(cfg.cv, strategy="grouped")), table
    )
    assert len(plain) == 10
    assert all((x.val == y.val).all() for x, y in zip(whole, plain[:5], strict=True))


def test_resume_mid_repeat_reruns_only_what_was_missing(repeated: Path) -> None:
    done, folds = KILLED["done"], KILLED["folds"]
    assert isinstance(done, set) and isinstance(folds, dict)
    assert 7 <= len(done) < 11  # killed in repeat 2
    after = events(repeated)
    again = [e["task"] for e in after if e["kind"] == "task_started"][int(KILLED["started"]) :]
    assert again and not set(again) & done
    assert load_state(repeated).status == "completed"
    # folds finished before the kill keep their logged scores, scored once
    finished = [e["fold"] for e in after if e["kind"] == "fold_finished"]
    assert sorted(finished) == list(range(1, 14))
    summary = json.loads((repeated / "summary.json").read_text())["combinations"][0]["folds"]
    for f in summary:
        if f["fold"] in folds:
            logged = folds[f["fold"]]["combinations"][0]
            assert f["quadratic_kappa"] == logged["quadratic_kappa"]


async def test_monitor_at_80x24_with_2_x_5_folds(repeated: Path) -> None:
    from textual.widgets import DataTable, Static

    from dfu_tui.tui.app import DfuApp
    from dfu_tui.tui.screens.monitor import MonitorScreen

    root = Path(__file__).resolve().parents[2]
    app = DfuApp(repeated.parent, root / "configs" / "default.toml", REFRESH)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(repeated.name)
        await on_screen(pilot, "MonitorScreen")
        assert isinstance(app.screen, MonitorScreen)
        screen = app.screen
        table = screen.query_one("#folds", DataTable)
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert labels[:6] == [
            "r1 fold 1",
            "r1 fold 2",
            "r1 fold 3",
            "r1 fold 4",
            "r1 fold 5",
            "r2 fold 1",
        ]
        assert "r2 fold 5" in labels and "hold-out" in labels
        assert "mean (10)" in labels and "sample sd" in labels
        assert [lb for lb in labels if lb.startswith("repeat")] == [
            "repeat 1 mean",
            "repeat 2 mean",
        ]
        verdict = str(screen.query_one("#verdict", Static).render())
        assert "final on quadratic kappa" in verdict


def test_the_notify_hook_said_the_end_and_only_what_the_resume_did(repeated: Path) -> None:
    """`resume --notify CMD` runs the user's command when the run completes, with the run
    id, the state and the verdict (also in DFU_TUI_* variables), without our secret token;
    nothing an earlier supervisor did is announced again."""
    notified = repeated.parent / "notified.jsonl"
    wait_for(lambda: notified.exists() and "completed" in notified.read_text(), timeout=30)
    lines = [json.loads(x) for x in notified.read_text().splitlines()]
    ends = [(argv, token, state) for argv, token, state in lines if argv[1] == "completed"]
    assert len(ends) == 1
    ((argv, token, state),) = ends
    assert argv[0] == repeated.name and state == "completed" and token is None
    assert argv[2].startswith("metadata: minimum ")
    earlier = {f for f in KILLED["folds"]}
    for argv, _, _ in lines:
        if argv[1] == "collapse":
            assert int(argv[2].split()[1].rstrip(":")) not in earlier, argv
    assert "[notify]" in (repeated / "config.toml").read_text()  # saved for the next resume
