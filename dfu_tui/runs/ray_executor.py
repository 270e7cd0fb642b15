"""The Ray executor: the same (fold, branch) tasks on a Ray cluster (or a local Ray
instance), one Ray worker process per task.

No shared filesystem is assumed. The run's metadata table and each image modality's crops
are put in Ray's object store once per run and shared by every task that needs them; a task
gets them, the resolved config and its fold's indices, never a path. It streams its start
(with the node it runs on) and its epochs back through a `ray.util.queue.Queue`, and returns
its `TaskResult`; this executor, in the supervisor on the launching machine, writes the
events and the predictions file exactly as a local worker would.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfu_tui.config import Config, ExecutorConfig
from dfu_tui.data.schema import is_metadata_branch
from dfu_tui.errors import InputError
from dfu_tui.runs import netns
from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.executor import TaskOutcome
from dfu_tui.runs.procs import descendants, end_processes, record_started, run_processes
from dfu_tui.runs.rundir import RunDir, save_predictions
from dfu_tui.runs.tasks import epoch_events, parse_task_id

if TYPE_CHECKING:
    from dfu_tui.engine.folds import Fold


def train_remote(
    cfg_doc: dict[str, Any],
    table: Any,
    crops: Any,
    fold: tuple[int, Any, Any, int, str],
    branch: str,
    threads: int,
    queue: Any,
    task: str,
) -> tuple[Any, str, dict[str, float]]:
    """Runs inside a Ray worker: rebuild the config and the dataset slice from what was
    sent, train the task with the engine, stream epochs, return the result, the node and
    what the task used (CPU, peak memory)."""
    import ray

    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import Dataset
    from dfu_tui.engine.folds import Fold
    from dfu_tui.engine.training import train_task

    node = node_name(ray.get_runtime_context().get_node_id())
    queue.put(("started", task, node, os.getpid()))
    cfg = load_config(None, raw=cfg_doc)
    dataset = Dataset(Path("."), Path("."), table, {branch: crops} if crops is not None else {})
    number, train, val, repeat, kind = fold
    from dfu_tui.runs.usage import Usage

    usage = Usage.start()

    def on_epoch(record: dict[str, Any]) -> None:
        queue.put(("epoch", task, {**record, **usage.lap()}))

    result = train_task(
        cfg, dataset, Fold(number, train, val, repeat, kind), branch, threads, on_epoch
    )
    return result, node, usage.total()


def node_name(node_id: str = "") -> str:
    """How a node is named in events: its host name and IP (and Ray node id prefix)."""
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        ip = "?"
    name = f"{socket.gethostname()} ({ip})"
    return f"{name} node {node_id[:8]}" if node_id else name


def address_problem(address: str, timeout: float = 10.0) -> str:
    """Why nothing answers at a Ray address given as `host:port` or `ray://host:port`, or ""
    (also for a new local instance and for `auto`, which Ray itself refuses at once).

    `ray.init` on an address where nothing listens does not fail: it retries for minutes,
    printing its own log lines. A plain TCP connection says in seconds whether a head is
    there, before a run directory exists.
    """
    if address in ("", "local", "auto"):
        return ""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # an IPv6 literal
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return ""
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    return (
        f"executor.address: no Ray cluster answers at {address} ({reason}); start one "
        "there (`ray start --head`), or leave the address empty for a local instance"
    )


def task_options(ex: ExecutorConfig, branch: str, cluster_gpus: bool) -> dict[str, Any]:
    """What a task asks Ray for: `cpus_per_task`; `gpus_per_task` (fractions share a GPU)
    for an image task where the cluster has GPUs (else it would wait for ever), none for a
    metadata task; `memory_gb` reserved when set."""
    image = not is_metadata_branch(branch)
    options: dict[str, Any] = {
        "num_cpus": ex.cpus_per_task,
        "num_gpus": ex.gpus_per_task if image and cluster_gpus else 0,
    }
    if ex.memory_gb > 0:
        options["memory"] = int(ex.memory_gb * 1e9)
    return options


def session_root(run_id: str) -> Path:
    """A local Ray instance's session folder for one run: private (0700, ours) under the
    system's temporary folder, short (Ray's socket paths are limited to about 100 bytes), and
    removed when the run ends or is stopped (Ray's default is a shared, world-writable one)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"dfu-ray-{os.geteuid()}" / run_id[-6:]


def remove_session(run_id: str) -> None:
    """Remove a run's local Ray session folder, if it is a folder of ours."""
    import shutil

    from dfu_tui.paths import UnsafePath, check_own_dir

    root = session_root(run_id)
    try:
        check_own_dir(root.parent, follow=False)
        check_own_dir(root, follow=False)
    except UnsafePath:
        return
    shutil.rmtree(root, ignore_errors=True)


class RayExecutor:
    """Tasks of one run as Ray tasks (`max_calls=1`: a fresh worker process per task)."""

    def __init__(self, run: RunDir, cfg: Config, events: EventWriter) -> None:
        self.run, self.cfg, self.events = run, cfg, events
        self.folds: list[Fold] = []
        self._refs: dict[str, Any] = {}
        self._nodes: dict[str, str] = {}
        self._attempts: dict[str, int] = {}
        self._payload: dict[str, Any] = {}
        self._ray: Any = None
        self._queue: Any = None
        self._remote: Any = None
        self._started_ray = False
        self._cluster_gpus = False

    # -- connection and data

    def _connect(self) -> None:
        if self._ray is not None:
            return
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise InputError("executor.kind = 'ray': Ray is not installed") from None
        address = self.cfg.executor.address or None
        problem = address_problem(address or "")
        if problem:
            raise InputError(problem)
        local: dict[str, Any] = {}
        if netns.local_ray("ray", address):  # a local instance: loopback only, our own folder
            local = {"_node_ip_address": "127.0.0.1", "_temp_dir": str(self._session_root())}
        try:
            if not ray.is_initialized():
                if local:
                    self._isolate()
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    **local,
                )
                self._started_ray = True
                self._record()
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local instance"
            raise InputError(
                f"executor.address: cannot start or reach Ray at {where}: {exc}"
            ) from None
        self._ray = ray
        # image tasks ask for GPUs only where the cluster has some (else they would wait)
        self._cluster_gpus = float(ray.cluster_resources().get("GPU", 0)) > 0
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # the progress queue lives on this (the launching) node: it outlives any other node
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        ex = self.cfg.executor
        self._remote = ray.remote(max_calls=1, max_retries=ex.max_retries)(train_remote)

    def _data(self, branch: str) -> tuple[Any, Any]:
        """Object-store references to the table and the branch's crops (put once per run)."""
        from dfu_tui.data.dataset import load_dataset

        if "table" not in self._payload:
            from dfu_tui.engine.folds import run_folds

            table = load_dataset(self.cfg.dataset, modalities=[]).table
            self.folds = run_folds(self.cfg, table)
            self._payload["table"] = self._ray.put(table)
            self._payload["cfg"] = self.cfg.to_dict()
        if is_metadata_branch(branch):
            return self._payload["table"], None
        if branch not in self._payload:
            crops = load_dataset(self.cfg.dataset, modalities=[branch]).crops[branch]
            self._payload[branch] = self._ray.put(crops)
        return self._payload["table"], self._payload[branch]

    # -- the executor interface

    def can_take(self, task_id: str) -> bool:
        return True  # Ray schedules by the resources each task asks for

    def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
        self._connect()
        number, branch = parse_task_id(task_id)
        table, crops = self._data(branch)
        fold = self.folds[number - 1]
        ex = self.cfg.executor
        options = task_options(ex, branch, self._cluster_gpus)
        packed = (fold.number, fold.train, fold.val, fold.repeat, fold.kind)
        threads = max(1, int(ex.cpus_per_task))
        self._refs[task_id] = self._remote.options(**options).remote(
            self._payload["cfg"], table, crops, packed, branch, threads, self._queue, task_id
        )

    def wait(self, seconds: float) -> None:
        """Until a task has ended (its result is ready) or `seconds` have passed, so the next
        task starts as soon as one ends; what running tasks report, their starts and epochs,
        comes through the queue that `poll` drains, at least every `seconds`."""
        if not self._refs:
            time.sleep(seconds)
            return
        self._ray.wait(list(self._refs.values()), num_returns=1, timeout=seconds)

    def poll(self) -> list[TaskOutcome]:
        self._drain()
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs.values()), num_returns=len(self._refs), timeout=0)
        done = {id(r) for r in ready}
        finished = []
        for task_id, ref in list(self._refs.items()):
            if id(ref) in done:
                del self._refs[task_id]
                finished.append(self._collect(task_id, ref))
        self._drain()
        return finished

    def cancel(self) -> None:
        refs = list(self._refs.values())
        self._refs.clear()
        if not refs:
            return
        with contextlib.suppress(Exception):
            # tasks that have ended are not cancelled: Ray (2.60) can abort the process that
            # force-cancels a task whose result is arriving
            _, refs = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in refs:
            with contextlib.suppress(Exception):  # a task already gone is cancelled enough
                self._ray.cancel(ref, force=True)

    def _isolate(self) -> None:
        """A local instance's servers bind every interface: started in a network namespace
        whose only interface is loopback, nothing beyond this machine reaches them. Where
        that cannot be had, the run says so (and goes on, as Ray alone would)."""
        why = netns.isolate()
        if why:
            self.events.emit(
                "message",
                text=f"warning: the local Ray instance listens on every network interface "
                f"of this machine for this run: {why}",
            )

    def _session_root(self) -> Path:
        from dfu_tui.paths import check_own_dir, private_dir

        root = session_root(self.run.run_id)
        private_dir(root.parent)
        check_own_dir(root.parent, follow=False)  # another user's folder or a link: not used
        return private_dir(root)

    def close(self) -> None:
        if self._started_ray:
            self._ray.shutdown()
            # Ray ends its processes, and the workers follow their raylet, but not at once
            # (and its agents ignore SIGTERM): the run is closed when they are gone
            left = [p.pid for p in run_processes(self.run.path) if p.role == "started"]
            end_processes(left, grace=5.0)
            if not self.cfg.executor.address:
                remove_session(self.run.run_id)

    def _record(self) -> None:
        """The local instance's processes (servers, agents, the workers started so far) in
        the run's record, so that a stop finds them after this supervisor was killed."""
        if self._started_ray:
            # best effort: without the record only a killed supervisor's leftovers are missed
            with contextlib.suppress(OSError):
                record_started(self.run.path, descendants(os.getpid()))

    @property
    def running(self) -> list[str]:
        return list(self._refs)

    # -- results and progress

    def _log(self, task_id: str) -> Path:
        from dfu_tui.paths import check_own_dir

        logs = self.run.logs
        logs.mkdir(mode=0o700, exist_ok=True)
        check_own_dir(logs, follow=False)
        return logs / f"{task_id}.log"

    def _collect(self, task_id: str, ref: Any) -> TaskOutcome:
        log = self._log(task_id)
        number, branch = parse_task_id(task_id)
        try:
            result, node, used = self._ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a task's failure is its outcome
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            from dfu_tui.paths import write_own_text

            write_own_text(log, text.splitlines()[-1] + "\n")
            return TaskOutcome(task_id, 1, log)
        save_predictions(self.run.prediction_file(number, branch), **result.arrays())
        self.events.emit(
            "branch_finished",
            task=task_id,
            fold=number,
            branch=branch,
            seconds=result.seconds,
            best_epoch=result.best_epoch,
            node=node,
            **used,
        )
        return TaskOutcome(task_id, 0, log)

    def _drain(self) -> None:
        """Pass what running tasks reported (start, epochs) into the run's events."""
        if self._queue is None:
            return
        messages = self._queue.get_nowait_batch(self._queue.qsize())
        for message in messages:
            if message[0] == "started":
                _, task_id, node, pid = message
                number, branch = parse_task_id(task_id)
                self._attempts[task_id] = self._attempts.get(task_id, 0) + 1
                if self._attempts[task_id] > 1:
                    self.events.emit(
                        "message",
                        text=f"task {task_id} started again on {node} "
                        f"(attempt {self._attempts[task_id]}: its node was lost)",
                    )
                self._nodes[task_id] = node
                self._record()  # its worker process, on this machine with a local instance
                self.events.emit(
                    "task_started", task=task_id, fold=number, branch=branch, pid=pid, node=node
                )
            elif message[0] == "epoch":
                _, task_id, record = message
                number, branch = parse_task_id(task_id)
                for kind, fields in epoch_events(task_id, number, branch, record):
                    self.events.emit(kind, **fields)
