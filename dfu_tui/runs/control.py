"""Stopping a run from outside: SIGTERM to the supervisor's process group, SIGKILL after a grace."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from dfu_tui.runs.events import EventWriter
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import load_state
from dfu_tui.runs.supervisor import is_locked


def _signal_group(pgid: int | None, sig: signal.Signals) -> None:
    if pgid is None or pgid == os.getpgid(0):
        return  # never signal our own group (a foreground run stops itself on Ctrl-C)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_run(run: RunDir, grace: float = 10.0, poll: float = 0.1) -> tuple[str, float]:
    """Stop a run; return its final status and the seconds it took to reach it."""
    start = time.monotonic()
    state = load_state(run.path)
    if state.status in ("completed", "failed", "cancelled"):
        return state.status, 0.0
    if not is_locked(run):
        # The supervisor is gone (stale): end its leftover workers and close the record.
        _signal_group(state.pgid, signal.SIGTERM)
        _close(run, "supervisor was not running; marked cancelled by stop")
        return "cancelled", time.monotonic() - start
    _signal_group(state.pgid, signal.SIGTERM)
    if state.pid is not None and state.pgid == os.getpgid(0):
        os.kill(state.pid, signal.SIGTERM)
    while time.monotonic() - start < grace:
        state = load_state(run.path)
        if state.status != "running" and not is_locked(run):
            return state.status, time.monotonic() - start
        time.sleep(poll)
    _signal_group(state.pgid, signal.SIGKILL)
    time.sleep(poll)
    state = load_state(run.path)
    if state.status == "running":
        _close(run, f"killed after a {grace:g} s grace period")
    return load_state(run.path).status, time.monotonic() - start


def _close(run: RunDir, reason: str) -> None:
    events = EventWriter(run.events)
    try:
        events.emit("run_cancelled", reason=reason)
    finally:
        events.close()
