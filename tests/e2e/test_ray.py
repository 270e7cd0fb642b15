"""The Ray executor on this machine: a local Ray instance, and a two-node cluster started in
the test (`ray.cluster_utils.Cluster`) that loses a node mid-run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dfu_tui.runs.state import load_state
from tests.helpers import (
    ROOT,
    STANDIN,
    SharedRun,
    detached_run,
    run_dfu,
    set_args,
    shared_cnn_settings,
    standin_env,
    tiny,
    wait_for,
)

# all Ray tests in one test process, one at a time (each starts or joins a Ray instance),
# beside the final-model tests' process; the last compares with the shared local CNN run,
# which the other process has made by then (`built_once`); Ray is looked for, not imported,
# when the tests are collected (0.7 s in each test process)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("ray"),
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed"),
]


def small(data: Path) -> list[str]:
    """A tiny run on `data` (the session's 30-patient demo: not generated again per run)."""
    return tiny(f"data.root='{data}'", "image_model.epochs=2", "image_model.patience=2")


def sets(items: list[str]) -> list[str]:
    return set_args(items)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    import os

    return standin_env(
        {
            **os.environ,
            "DFU_TUI_CACHE_DIR": str(tmp_path / "cache"),
            "DFU_TUI_HEARTBEAT": "1",
            "RAY_DISABLE_USAGE_STATS": "1",
        },
        epoch_seconds=0.2,
    )


def events(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]


def summary_kappas(run: Path, branch: str) -> list[float]:
    doc = json.loads((run / "summary.json").read_text())
    return [f["kappa"] for f in next(b for b in doc["branches"] if b["branch"] == branch)["folds"]]


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command) of every process that `ps` sees and that
    has not exited (a zombie, or one whose first thread has exited and whose other threads
    are being torn down after a SIGKILL, has)."""
    rows = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,stat=,lstart=,args="], capture_output=True, text=True
    ).stdout.splitlines()
    return {
        int(pid): (int(ppid), " ".join(rest[:5]), " ".join(rest[5:]))
        for pid, ppid, stat, *rest in (row.split() for row in rows)
        if not stat.startswith("Z")
    }


def process_tree(root: int) -> dict[int, tuple[int, str, str]]:
    """Every process below `root` (children, theirs, ...)."""
    every = processes()
    below: dict[int, tuple[int, str, str]] = {}
    grew = True
    while grew:
        grew = False
        for pid, info in every.items():
            if pid not in below and (info[0] == root or info[0] in below):
                below[pid] = info
                grew = True
    return below


def socket_inodes(pids: list[int]) -> set[int]:
    import os

    found: set[int] = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue  # ended meanwhile
        found |= {int(x[8:-1]) for x in links if x.startswith("socket:[")}
    return found


def listening(pid: int | str) -> set[int]:
    """Inodes of the listening TCP sockets in the network namespace of `pid`."""
    found: set[int] = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A":  # LISTEN
                found.add(int(cols[9]))
    return found


def assert_loopback_only(pid: int, tree: dict[int, tuple[int, str, str]]) -> None:
    """The local instance's servers listen, in a namespace whose only interface is loopback,
    and none of them in this machine's own namespace (what `ss -ltn` lists)."""
    from dfu_tui.runs import netns

    ours = socket_inodes([pid, *tree])
    assert listening(pid) & ours, "the Ray servers listen somewhere"
    assert not listening("self") & ours
    assert netns.interfaces(pid) == ["lo"]


@pytest.mark.parametrize("supervisor", ["alive", "killed"])
def test_stop_cancels_every_ray_task(
    tmp_path: Path, env, supervisor: str, small_demo_master: Path
) -> None:
    """Stop ends the local Ray instance the supervisor started and every task it ran: at
    once with a live supervisor, and as orphans after the supervisor was killed (-9)."""
    import os
    import signal

    # the subject is stopping: the stand-in image branch (TensorFlow on Ray: the test above)
    slow = [
        *small(small_demo_master),
        "image_model.epochs=200",
        "image_model.patience=200",
        STANDIN,
        # long tasks only, all running or waiting when stopped (a metadata task would have
        # ended before the stop, in a Ray worker of its own: not the subject)
        "modalities.use=['thermal_map']",
    ]
    run = detached_run(env, tmp_path / "runs", slow, "--executor", "ray")
    wait_for(lambda: any(e["kind"] == "epoch" for e in events(run)), timeout=180)
    pid = load_state(run).pid
    assert pid is not None
    # the local Ray instance the supervisor started, with the worker training the epochs
    tree = process_tree(pid)
    assert any("ray::train_remote" in command for _, _, command in tree.values()), tree
    assert_loopback_only(pid, tree)
    if supervisor == "killed":
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pid not in processes())
    stop = run_dfu(env, "stop", str(run))
    assert stop.returncode == 0 and "cancelled" in stop.stdout, stop.stdout + stop.stderr
    assert load_state(run).status == "cancelled"
    # ... is gone the moment stop returns
    now = processes()  # an orphan has a new parent: the same pid and start time is the same
    left = {p: i for p, i in tree.items() if p in now and now[p][1] == i[1]}
    assert left == {}, left
    # the local instance's session folder was private to us, and is gone with the run
    from dfu_tui.runs.ray_executor import session_root

    assert session_root(run.name).parent.stat().st_mode & 0o777 == 0o700
    assert not session_root(run.name).exists()


# `RayExecutor.wait` on a cluster (argv: its address, a run folder, an events file): how
# long a wait lasts with nothing ending, and with a task that ends while it waits
WAITS = """
import json, sys, time
import ray
from dfu_tui.config import load_config
from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.ray_executor import RayExecutor
from dfu_tui.runs.rundir import RunDir

def sleep(seconds):
    time.sleep(seconds)

ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
executor = RayExecutor(RunDir(sys.argv[2]), load_config(None, []), EventWriter(sys.argv[3]))
executor._ray = ray  # as `_connect` leaves it, without a queue
nap = ray.remote(num_cpus=0)(sleep)
executor._refs = {"long": nap.remote(300)}
began = time.monotonic()
executor.wait(0.5)
nothing = time.monotonic() - began
executor._refs["short"] = nap.remote(0.1)
began = time.monotonic()
executor.wait(120)
one = time.monotonic() - began
assert ray.wait([executor._refs["short"]], timeout=0)[0], "wait returned before the end"
print(json.dumps([nothing, one]))
"""


def test_two_nodes_and_a_lost_node(tmp_path: Path, env, monkeypatch, small_demo_master) -> None:
    from ray.cluster_utils import Cluster

    # the nodes' workers (started from this process) get the stand-in image branch too
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    monkeypatch.setenv("DFU_TUI_STANDIN_EPOCH", env["DFU_TUI_STANDIN_EPOCH"])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        longer = [
            *small(small_demo_master),
            "image_model.epochs=15",
            "image_model.patience=15",
            STANDIN,
            "modalities.use=['thermal_map']",  # a task on each node, long enough to lose
        ]
        proc = run_dfu(
            env,
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--detach",
            "--jobs",
            "2",
            "--executor",
            "ray",
            "--ray-address",
            cluster.address,
            *sets(longer),
        )
        assert proc.returncode == 0, proc.stderr
        run = tmp_path / "runs" / proc.stdout.strip()
        on_worker = f"node {worker.node_id[:8]}"

        def busy_on_worker() -> bool:
            log = events(run)
            done = {e["task"] for e in log if e["kind"] == "branch_finished"}
            return any(
                e["kind"] == "task_started" and on_worker in e["node"] and e["task"] not in done
                for e in log
            )

        wait_for(busy_on_worker, timeout=240, every=0.1)
        cluster.remove_node(worker)  # its raylet and workers die mid-task
        wait_for(lambda: load_state(run).status in ("completed", "failed"), timeout=400)
        log = events(run)
        assert load_state(run).status == "completed", [e for e in log if e["kind"] == "run_failed"]
        assert any("started again" in e.get("text", "") for e in log if e["kind"] == "message")
        nodes = {e["node"] for e in log if e["kind"] == "task_started"}
        assert any(on_worker in n for n in nodes) and any(on_worker not in n for n in nodes)
        # the supervisor's wait between two looks ends as soon as a task's result is ready
        # (a driver of its own: a Ray driver that aborts must not take this test process)
        waits = subprocess.run(
            [sys.executable, "-c", WAITS, cluster.address, str(run), str(tmp_path / "x")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert waits.returncode == 0, waits.stderr[-3000:]
        nothing, one = json.loads(waits.stdout.splitlines()[-1])
        assert nothing >= 0.5  # nothing ended: the whole half second
        assert one < 60, "wait slept its whole time"
    finally:
        cluster.shutdown()


def test_ray_gives_the_local_results_and_streams_epochs(
    tmp_path: Path, env, monkeypatch, shared_cnn_run: SharedRun, small_demo_master: Path
) -> None:
    """A user's foreground run on a local Ray instance, real TensorFlow: the local executor's
    results, epochs streamed as they come, isolated on loopback. The user's `run` process has
    threads before Ray would start, so it cannot get a network namespace: it starts the
    supervisor in a fresh process (which can) and follows its events, with no warning.

    The local run it is compared with (`shared_cnn_run`, the same data and settings) trained
    every task in one warm worker given the machine's 2 cores; here each task is a new Ray
    worker process (`max_calls=1`) given 1: the same forests and the same CNNs, so a warm
    worker's CNN is a fresh process's, and `--jobs` (threads given) does not change a model."""
    import os

    import numpy as np

    from dfu_tui.cli import main
    from dfu_tui.runs import netns
    from dfu_tui.runs.rundir import RunDir, load_predictions

    for key in ("DFU_TUI_CACHE_DIR", "DFU_TUI_HEARTBEAT", "RAY_DISABLE_USAGE_STATS"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr(netns, "can_isolate_here", lambda: False)  # as a user would be
    monkeypatch.chdir(ROOT)
    runs = tmp_path / "ray"
    local = shared_cnn_run.run
    same = [*shared_cnn_settings(small_demo_master), "radar.enabled=false"]  # not the subject
    # one task at a time: one Ray worker imports TensorFlow (two tasks at once on Ray: the
    # stop and two-node tests)
    args = ["run", "configs/default.toml", "--runs-dir", str(runs), "--jobs", "1"]
    assert main([*args, "--executor", "ray", *sets(same)]) == 0
    (on_ray,) = runs.iterdir()
    run_started = next(e for e in events(on_ray) if e["kind"] == "run_started")
    assert run_started["pid"] != os.getpid()  # the supervisor ran in its own process
    started = [e for e in events(on_ray) if e["kind"] == "task_started"]
    assert len(started) == 4 == len({e["pid"] for e in started})  # a new process per task
    assert len({e["pid"] for e in events(local) if e["kind"] == "task_started"}) == 1
    for number in (1, 2):
        for branch in ("metadata", "thermal_map"):
            here = load_predictions(RunDir(local).prediction_file(number, branch))
            there = load_predictions(RunDir(on_ray).prediction_file(number, branch))
            for key in ("val_index", "val_proba", "train_proba"):
                assert np.array_equal(here[key], there[key], equal_nan=True), (number, branch, key)
    assert summary_kappas(on_ray, "metadata") == summary_kappas(local, "metadata")
    assert summary_kappas(on_ray, "thermal_map") == summary_kappas(local, "thermal_map")
    log = events(on_ray)
    epochs = [e for e in log if e["kind"] == "epoch"]
    assert {e["task"] for e in epochs} == {"fold1-thermal_map", "fold2-thermal_map"}
    # epochs were logged while their task ran: between its start and its end
    for task in ("fold1-thermal_map", "fold2-thermal_map"):
        kinds = [e["kind"] for e in log if e.get("task") == task]
        assert kinds[0] == "task_started" and kinds[-1] == "branch_finished"
        assert "epoch" in kinds[1:-1]
    assert all(e.get("node") for e in log if e["kind"] == "task_started")
    # the supervisor isolated its local instance: no warning that it listens everywhere
    assert not [e for e in log if "every network interface" in e.get("text", "")]
    status = json.loads(run_dfu(env, "status", str(on_ray), "--json").stdout)
    assert status["status"] == "completed" and status["nodes"]
    assert load_state(on_ray).status == "completed"
