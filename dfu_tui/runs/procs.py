"""Finding a run's own processes, so that nothing that is not ours is ever signalled.

A supervisor or worker of a run is recognised by its command line (`-m
dfu_tui.supervise RUN_DIR` or `-m dfu_tui.runs.worker RUN_DIR (TASK | --serve)`, naming the run's
directory) and by belonging to this user; a recorded process id or group alone is never
trusted (ids are reused after a reboot or a wrap-around).

What a supervisor starts that does not name the run on its command line (a local Ray
instance: its servers, agents and worker processes, some of which outlive a killed
supervisor as orphans and ignore SIGTERM) is recorded in the run's `processes.json` by
identity (pid, boot and start time, which together name one process for good), the
supervisor's secret (a random token it puts in its own environment, `DFU_TUI_RUN_TOKEN`,
which everything it starts inherits) and the supervisor's session (which everything it starts
stays in; no process can join a session it was not born in). Identity is public (/proc), so
it proves nothing on its own: a process is recorded only once proven ours (its environment,
which only its owner and root can read, holds the token, or it is in the supervisor's
session), the record is read only as a small regular file of ours in a run folder of ours
(another user's folder is refused before anything is read), and a recorded process is
signalled only while it is this user's and still the very process recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
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
    "dfu_tui.runs.fitjob": "fit",  # a detached `dfu-tui fit` (`stop` ends it too)
}


@dataclass(frozen=True)
class RunProcess:
    pid: int
    role: str  # "supervisor", "worker", or "started" (recorded in `processes.json`)
    task: str  # the worker's task id ("" for a supervisor)


def cmdline(pid: int) -> list[str]:
    """The command line of `pid` ([] once it has ended, or where it cannot be read)."""
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
    """This user's live supervisor and worker processes of the run in `run_dir`, and what
    its supervisors recorded that they started (`record_started`)."""
    target = run_dir.resolve()
    uid = os.getuid()
    # what our supervisors started inherits their secret token: a process holding it is
    # ours even when it was started after the last record (a killed supervisor's Ray
    # instance keeps starting workers)
    tokens = {t for _, t, _ in _read_started(run_dir).values() if len(t) == 32}
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        args = cmdline(int(entry.name))
        for module, role in MODULES.items():
            if module in args:
                rest = args[args.index(module) + 1 :]
                if rest and _same_path(rest[0], target):
                    # a serving worker (`RUN --serve`) names no task on its command line
                    task = rest[1] if role == "worker" and len(rest) > 1 else ""
                    task = "" if task.startswith("--") else task
                    found.append(RunProcess(int(entry.name), role, task))
                    break
        else:
            if any(has_token(int(entry.name), t) for t in tokens):
                found.append(RunProcess(int(entry.name), "started", ""))
    named = {p.pid for p in found}
    found += [RunProcess(pid, "started", "") for pid in _recorded(run_dir) if pid not in named]
    return found


STARTED_FILE = "processes.json"


def _boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def identity(pid: int) -> str:
    """The boot and the start time of a live process ("" if there is none): with its pid it
    names one process, as a pid is never reused within the same clock tick of one boot."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return f"{_boot()}:{fields[19]}" if fields[0] != "Z" else ""


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


TOKEN_ENV = "DFU_TUI_RUN_TOKEN"
STARTED_LIMIT = 1 << 20  # a process record is small; a bigger file is not ours to parse


def run_token() -> str:
    """This supervisor's secret, made once and put in its environment (inherited by every
    process it starts)."""
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        token = secrets.token_hex(16)
        os.environ[TOKEN_ENV] = token
    return token


def has_token(pid: int, token: str) -> bool:
    """Whether a live process's environment holds `TOKEN_ENV=token` (only its owner and
    root can read it)."""
    if not token:
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{TOKEN_ENV}={token}".encode() in environ.split(b"\0")


def session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _proven(pid: int, token: str, session: int | None) -> bool:
    """A live process holds our token, or lives in our recorded session."""
    return has_token(pid, token) or (bool(session) and session_of(pid) == session)


def _read_started(run_dir: Path) -> dict[str, tuple[str, str, int | None]]:
    """pid -> (identity, token, session) from the run's record; a record written before
    tokens (or anything damaged, linked or not ours) gives nothing to trust."""
    from dfu_tui.paths import read_own_bytes

    try:
        doc = json.loads(read_own_bytes(run_dir / STARTED_FILE, STARTED_LIMIT).decode("utf-8"))
    except (OSError, ValueError):
        return {}  # none recorded, or damaged: nothing is trusted from it
    if not isinstance(doc, dict):
        return {}
    out = {}
    for pid, entry in doc.items():
        if isinstance(entry, dict) and isinstance(entry.get("identity"), str):
            token, session = entry.get("token"), entry.get("session")
            out[str(pid)] = (
                entry["identity"],
                token if isinstance(token, str) else "",
                session if isinstance(session, int) and not isinstance(session, bool) else None,
            )
    return out


def record_started(run_dir: Path, pids: list[int], token: str | None = None) -> None:
    """Add processes this supervisor started to the run's record (pid -> identity and the
    supervisor's token, `run_token()` by default); only processes holding that token are
    recorded, and recorded processes that are gone (or whose pid is another process now)
    are dropped."""
    from dfu_tui.paths import atomic_write_text

    token = token or run_token()
    session = session_of(0)
    known = {
        k: {"identity": i, "token": t, "session": s}
        for k, (i, t, s) in _read_started(run_dir).items()
    }
    kept = {k: v for k, v in known.items() if k.isdigit() and identity(int(k)) == v["identity"]}
    new = {
        str(p): {"identity": i, "token": token, "session": session}
        for p in pids
        if (i := identity(p)) and _proven(p, token, session)
    }
    record = {**kept, **new}
    if record != known:
        atomic_write_text(run_dir / STARTED_FILE, json.dumps(record, indent=0))


def _recorded(run_dir: Path) -> list[int]:
    """The recorded processes (proven ours when recorded) that are still the very processes
    recorded, and this user's."""
    uid = os.getuid()
    live = []
    for pid, (ident, token, _session) in _read_started(run_dir).items():
        # recorded only once proven ours (token or session) by our supervisor, in a record
        # that is a regular file of ours in a folder of ours: its identity names that very
        # process (a title rewritten since may hide the environment that proved it)
        if not pid.isdigit() or not token or identity(int(pid)) != ident:
            continue
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}").stat().st_uid == uid:
                live.append(int(pid))
    return live


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
