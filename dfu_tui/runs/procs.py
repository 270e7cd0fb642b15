"""Finding a run's own processes, so that nothing that is not ours is ever signalled.

A supervisor or worker of a run is recognised by its command line (`-m
dfu_tui.supervise RUN_DIR` or `-m dfu_tui.runs.worker RUN_DIR TASK`, naming the run's
directory) and by belonging to this user; a recorded process id or group alone is never
trusted (ids are reused after a reboot or a wrap-around).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

SUPERVISOR_MODULE = "dfu_tui.supervise"
# module -> role; `dfu_tui.runs.supervisor` is how supervisors of earlier versions were started
MODULES = {
    SUPERVISOR_MODULE: "supervisor",
    "dfu_tui.runs.supervisor": "supervisor",
    "dfu_tui.runs.worker": "worker",
}


@dataclass(frozen=True)
class RunProcess:
    pid: int
    role: str  # "supervisor" or "worker"
    task: str  # the worker's task id ("" for a supervisor)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _same_path(arg: str, run_dir: Path) -> bool:
    try:
        return Path(arg).resolve() == run_dir
    except (OSError, RuntimeError, ValueError):
        return False


def run_processes(run_dir: Path) -> list[RunProcess]:
    """This user's live supervisor and worker processes of the run in `run_dir`."""
    target = run_dir.resolve()
    uid = os.getuid()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        args = _cmdline(int(entry.name))
        for module, role in MODULES.items():
            if module in args:
                rest = args[args.index(module) + 1 :]
                if rest and _same_path(rest[0], target):
                    task = rest[1] if role == "worker" and len(rest) > 1 else ""
                    found.append(RunProcess(int(entry.name), role, task))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def end_processes(pids: list[int], grace: float, poll: float = 0.1) -> list[int]:
    """SIGTERM `pids` (and SIGCONT, so a stopped one handles it), SIGKILL what is left after
    `grace` seconds; return the pids that are still alive at the end (normally none)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(poll)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 2.0
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(poll)
    return [p for p in pids if alive(p)]
