"""Background runs with real processes: detach, kill, stale, resume, stop, lock, export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfu_tui.runs.state import load_state
from tests.helpers import ROOT, STANDIN, detached_run, set_args, standin_env, tiny, wait_for
from tests.helpers import run_dfu as dfu

pytestmark = pytest.mark.slow  # trains real models (the stand-in where processes are the subject)


def fast_items(data: Path, epochs: int = 3, standin: bool = False) -> list[str]:
    """`key=value` settings of a small, quick run on `data` (`standin`: the deterministic
    stand-in image branch, where process handling is the subject, not training)."""
    return tiny(
        f"data.root='{data}'",
        f"image_model.epochs={epochs}",
        f"image_model.patience={epochs}",
        *([STANDIN] if standin else []),
    )


def fast(data: Path, epochs: int = 3, standin: bool = False) -> list[str]:
    return set_args(fast_items(data, epochs, standin))


HEARTBEAT = 0.5  # seconds: a killed supervisor's run is stale after two missed heartbeats


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return standin_env(
        {
            **os.environ,
            "DFU_TUI_CACHE_DIR": str(tmp_path / "cache"),
            "DFU_TUI_HEARTBEAT": str(HEARTBEAT),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
    )


def detach(
    env: dict[str, str], runs: Path, data: Path, epochs: int = 3, standin: bool = False
) -> Path:
    # one worker process: the subject is detaching, killing, resuming (the other core runs
    # the other tests)
    return detached_run(env, runs, fast_items(data, epochs, standin), "--jobs", "1")


def events(run: Path) -> list[dict]:
    path = run / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(ln) for ln in lines if ln]


def final(run: Path, timeout: float = 240) -> str:
    ends = ("completed", "failed", "cancelled")
    return wait_for(
        lambda: load_state(run).status if load_state(run).status in ends else "", timeout
    )


def test_survives_the_terminal(tmp_path: Path, env, small_demo_master: Path) -> None:
    """A detached run outlives its launcher and the terminal's whole process group."""
    runs = tmp_path / "runs"
    args = " ".join(["'" + a + "'" for a in fast(small_demo_master, standin=True)])
    terminal = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{sys.executable} -m dfu_tui run configs/default.toml --runs-dir {runs} "
            f"--detach --jobs 1 {args}; sleep 60",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    run_id = terminal.stdout.readline().strip()  # type: ignore[union-attr]
    os.killpg(terminal.pid, signal.SIGHUP)
    os.killpg(terminal.pid, signal.SIGKILL)
    terminal.wait()
    run = runs / run_id
    assert final(run) == "completed"
    assert (run / "summary.json").is_file()
    kinds = [e["kind"] for e in events(run)]
    assert sum(k in ("run_finished", "run_failed", "run_cancelled") for k in kinds) == 1
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    for path in run.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_killed_worker_fails_the_run_naming_the_task(
    tmp_path: Path, env, small_demo_master: Path
) -> None:
    run = detach(env, tmp_path / "runs", small_demo_master, epochs=200, standin=True)
    started = wait_for(lambda: [e for e in events(run) if e["kind"] == "epoch"])
    task = started[0]["task"]
    pid = next(e["pid"] for e in events(run) if e["kind"] == "task_started" and e["task"] == task)
    os.kill(pid, signal.SIGKILL)
    assert final(run) == "failed"
    (failure,) = [e for e in events(run) if e["kind"] == "run_failed"]
    assert failure["task"] == task and failure["exit_code"] == -9
    assert "log_tail" in failure
    status = json.loads(dfu(env, "status", str(run), "--json").stdout)
    assert status["status"] == "failed" and status["failed_task"] == task


def test_stale_then_resume_runs_only_missing_tasks(
    tmp_path: Path, env, small_demo_master: Path, monkeypatch
) -> None:
    """Resume after a killed supervisor, with real TensorFlow training: only the missing
    tasks run, and the forest's predictions are those of an uninterrupted training."""
    run = detach(env, tmp_path / "runs", small_demo_master, epochs=4)
    wait_for(lambda: any(e["kind"] == "branch_finished" for e in events(run)))
    supervisor = int((run / "lock").read_text())
    os.kill(supervisor, signal.SIGKILL)
    status = wait_for(
        lambda: (
            (s := json.loads(dfu(env, "status", str(run), "--json").stdout))["status"] == "stale"
            and s
        ),
        every=0.25,
    )
    assert status["last_heartbeat_age_s"] >= 2 * HEARTBEAT  # stale after two missed heartbeats
    # A task killed mid-way leaves no partial file; the resume ends any orphaned worker.
    done_before = {e["task"] for e in events(run) if e["kind"] == "branch_finished"}
    proc = dfu(env, "resume", str(run), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    after = events(run)
    resumed_at = next(i for i, e in enumerate(after) if e["kind"] == "run_resumed")
    rerun = [e["task"] for e in after[resumed_at:] if e["kind"] == "task_started"]
    assert rerun and not set(rerun) & done_before
    assert after[-1]["kind"] == "run_finished"
    assert {e["task"] for e in after if e["kind"] == "epoch"}  # the CNN really trained

    # The same forest as an uninterrupted training with the same seed (the worker calls
    # exactly `train_task`): the same probabilities, fold by fold.
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine.folds import run_folds
    from dfu_tui.engine.training import train_task
    from dfu_tui.runs.rundir import RunDir, load_predictions

    monkeypatch.setenv("DFU_TUI_CACHE_DIR", env["DFU_TUI_CACHE_DIR"])
    cfg = load_config(run / "config.toml")
    dataset = load_dataset(cfg.dataset, modalities=[])
    for fold in run_folds(cfg, dataset.table):
        here = train_task(cfg, dataset, fold, "metadata", 1)
        there = load_predictions(RunDir(run).prediction_file(fold.number, "metadata"))
        assert np.array_equal(here.val_proba, there["val_proba"])


def test_stop_cancels_without_partial_files(tmp_path: Path, env, small_demo_master: Path) -> None:
    run = detach(env, tmp_path / "runs", small_demo_master, epochs=200, standin=True)
    wait_for(lambda: any(e["kind"] == "epoch" for e in events(run)))
    second = dfu(env, "resume", str(run))  # the lock refuses a second supervisor
    assert second.returncode == 2 and "already running" in second.stderr
    proc = dfu(env, "stop", str(run))
    assert proc.returncode == 0 and "cancelled" in proc.stdout
    assert load_state(run).status == "cancelled"
    assert not list(run.rglob("*.tmp"))
    for npz in (run / "predictions").iterdir():
        with np.load(npz, allow_pickle=False) as data:
            assert data["val_proba"].shape[1] == 3


def test_resume_refuses_changed_config(tmp_path: Path, env) -> None:
    from tests.tui.conftest import COMPLETED, FIXTURES

    run = tmp_path / "runs" / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    config = run / "config.toml"
    config.write_text(config.read_text().replace("seed = 42", "seed = 43"))
    proc = dfu(env, "resume", str(run))
    assert proc.returncode == 2
    assert "config key cv.seed changed (42 -> 43)" in proc.stderr
    assert "Traceback" not in proc.stderr

    csv_text = dfu(env, "export", str(run), "--format", "csv", "--output", "-").stdout
    header, *rows = csv_text.splitlines()
    assert header.startswith("row,fold,modalities,epoch,kappa,quadratic_kappa")
    kinds = {r.split(",")[0] for r in rows}
    assert kinds == {"combination", "branch", "epoch"}  # feature rows: test_radar.py
    # columns added later come after the older ones, whose positions stay
    assert header.endswith(
        ",flags,repeat,fold_kind,paired_n,paired_kappa,paired_quadratic_kappa,"
        "strategy,reference_paired_kappa,reference_paired_quadratic_kappa,"
        "sensitivity_I,sensitivity_P,sensitivity_R,specificity_I,specificity_P,specificity_R,"
        "roc_auc_I,roc_auc_P,roc_auc_R,brier"
    )
    doc = json.loads(dfu(env, "export", str(run), "--format", "json", "--output", "-").stdout)
    assert doc["run"]["status"] == "completed" and len(doc["folds"]) == 2
