"""Stopping a run from outside: SIGTERM to the run's own processes, SIGKILL after a grace.

The run's processes are the holder of its lock (a live supervisor: a held lock cannot
belong to a reused pid), the supervisor and worker processes whose command line names
the run's directory, and what a supervisor recorded by identity that it started (a local
Ray instance and its workers, which a killed supervisor leaves behind): see `runs.procs`.
A recorded pid or process group is never signalled on its own. A stop is confirmed only
once those processes are gone; the log then ends with the final event that matches what
happened.
"""

from __future__ import annotations

import contextlib
import os
import time

from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.procs import alive, end_processes, run_processes
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import load_state
from dfu_tui.runs.supervisor import lock_holder, request_stop

FINAL = ("completed", "failed", "cancelled")
STARTED_GRACE = 1.0  # seconds before SIGKILL for what a killed supervisor started
ROUNDS = 3  # times a stop looks again for the run's processes after ending those it found


def _ours(run: RunDir) -> tuple[list[int], list[int], list[int]]:
    """(supervisor pids, their workers' pids, the pids of what else they started) of the
    run, never this process."""
    procs = run_processes(run.path)
    supervisors = {p.pid for p in procs if p.role == "supervisor"}
    holder = lock_holder(run)
    if holder is not None:
        supervisors.add(holder)
    workers = {p.pid for p in procs if p.role not in ("supervisor", "started")}
    started = {p.pid for p in procs if p.role == "started"} - supervisors - workers
    me = os.getpid()
    return sorted(supervisors - {me}), sorted(workers - {me}), sorted(started - {me})


def stop_run(run: RunDir, grace: float = 10.0, poll: float = 0.1) -> tuple[str, float]:
    """Stop a run; return its final status and the seconds it took to reach it. Another
    user's run folder is never acted on (InputError)."""
    from dfu_tui.paths import require_own_dir

    require_own_dir(run.path)
    start = time.monotonic()
    supervisors, workers, started = _ours(run)
    if not supervisors and not workers and not started:
        # A run or resume may be starting, with nothing to signal yet. Its supervisor looks
        # for a stop request once it holds the run's lock: one that looked before the
        # request was written held the lock by then, and the second look finds it.
        with contextlib.suppress(OSError):  # best effort: a full disk refuses even this
            request_stop(run)
        supervisors, workers, started = _ours(run)
    if not supervisors and not workers and not started:
        status = load_state(run.path, history=False).status
        if status in FINAL:
            return status, time.monotonic() - start
        _close(run, "supervisor was not running; marked cancelled by stop")
        return "cancelled", time.monotonic() - start
    if supervisors:  # the supervisor cancels its workers and writes the final event
        left = end_processes(supervisors, grace, poll)
        if left:
            raise OSError(f"{run.path}: supervisor pid {left[0]} survived SIGKILL")
    # workers of a dead supervisor, or left after it was killed; a killed supervisor's Ray
    # instance may start more while it is being ended: looked for again until none is left.
    # Our workers may be writing a file of the run: they get the grace. What a supervisor
    # started (a local Ray instance: its servers and workers, which write nothing of the
    # run) gets STARTED_GRACE: Ray's GCS server and autoscaler monitor, their driver gone,
    # do not end on SIGTERM at all, and the grace was a wait for nothing.
    for _ in range(ROUNDS):
        _, workers, started = _ours(run)
        if not workers and not started:
            break
        end_processes(workers, grace=max(1.0, grace / 2), poll=poll)
        end_processes(started, grace=min(STARTED_GRACE, grace), poll=poll)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(alive(p) for p in [*workers, *started]):
            time.sleep(poll)
    if not _ended(run):
        _close(run, f"stopped; the run's processes were ended within {grace:g} s")
    from dfu_tui.runs.ray_executor import remove_session

    remove_session(run.run_id)  # a local Ray instance's folder, left by a killed supervisor
    return load_state(run.path, history=False).status, time.monotonic() - start


def _ended(run: RunDir) -> bool:
    """Whether the log's last start or resume is followed by a final event."""
    state = load_state(run.path, history=False)
    return state.status in FINAL


def _close(run: RunDir, reason: str) -> None:
    events = EventWriter(run.events)
    try:
        events.emit("run_cancelled", reason=reason)
    finally:
        events.close()
