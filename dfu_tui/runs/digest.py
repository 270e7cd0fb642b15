"""A finished run's digest (`digest.json`): what the runs list shows of it, tied to the exact
event log it was made from, so that a dashboard over hundreds of runs opens without reading
their logs.

A finished run's log no longer changes, so its row (state, progress, elapsed time, best
figure on the criteria scale, flag counts, combinations, fusion, task times) can be made
once: by the supervisor when its run ends (`RUN/digest.json`), or by the dashboard the
first time it reads an older run's log (then in the user's cache, `digests/`, never in the
run folder: looking at a run changes none of its files, and another user's run is
digested too). The digest names the log it summarises by inode, size and modification
time; a log that differs in any of them (a resume appended to it, a copy, a damaged file) is
read again instead. A digest is untrusted input like any file in a run folder: it is read
only as a small regular file (no link, no FIFO), every field is checked for its type, and
one that fails is ignored (the log is read). It is written atomically, only into a folder
of ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, TypeGuard

from dfu_tui.runs.events import read_regular
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import Listing, RunState

DIGEST_VERSION = 1
DIGEST_LIMIT = 1 << 20  # a digest is a few KB; a bigger file is not one of ours
FINISHED = ("completed", "failed", "cancelled")

#: RunState's plain fields kept in a digest, with their types (None allowed where optional).
_SCALARS: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "reason": (str,),
    "started": (float, int, type(None)),
    "finished": (float, int, type(None)),
    "running_since": (float, int, type(None)),
    "ran": (float, int),
    "last_event": (float, int, type(None)),
    "last_heartbeat": (float, int, type(None)),
    "heartbeat": (float, int),
    "jobs": (int,),
    "folds": (int,),
    "folds_per_repeat": (int,),
    "repeats": (int,),
    "strategy": (str,),
    "metric": (str,),
    "fusion": (str,),
    "failed_task": (str, type(None)),
    "pid": (int, type(None)),
    "pgid": (int, type(None)),
    "skipped": (int,),
}


def log_mark(run: RunDir) -> tuple[int, int, int] | None:
    """The event log's (inode, size, modification time in ns), or None when it is missing
    or not a regular file."""
    try:
        st = os.stat(run.events, follow_symlinks=False)
    except OSError:
        return None
    import stat

    return (st.st_ino, st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def digest_of(state: RunState, mark: tuple[int, int, int]) -> dict[str, Any]:
    """The digest of a finished run's state, made from the log marked `mark`."""
    return {
        "v": DIGEST_VERSION,
        "log": list(mark),
        "state": {k: getattr(state, k) for k in _SCALARS},
        "combinations": state.combinations,
        "tasks": state.tasks,
        "done": state.done,
        "listing": {
            "folds_done": state.folds_done,
            "best_text": state.best_kappa_text(),
            "flags": state.flag_counts(),
        },
    }


def _finite(v: Any) -> bool:
    return not isinstance(v, float) or math.isfinite(v)


def _strings(v: Any) -> TypeGuard[list[str]]:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def state_from(doc: Any, run_id: str, mark: tuple[int, int, int]) -> RunState | None:
    """The partial state a digest describes (`RunState.listing` set, no fold results or
    history), or None when it is not a sound digest of the log marked `mark`."""
    if not isinstance(doc, dict) or doc.get("v") != DIGEST_VERSION:
        return None
    if doc.get("log") != list(mark):
        return None  # made from another log, or before the log changed
    fields, listing = doc.get("state"), doc.get("listing")
    if not isinstance(fields, dict) or not isinstance(listing, dict):
        return None
    if set(fields) != set(_SCALARS):
        return None  # made by another version, or not ours: the log is read
    for key, types in _SCALARS.items():
        v = fields.get(key)
        if key not in fields or isinstance(v, bool) or not isinstance(v, types):
            return None
        if not _finite(v):
            return None
    if fields["status"] not in FINISHED:
        return None
    combos, tasks, done = doc.get("combinations"), doc.get("tasks"), doc.get("done")
    if not (isinstance(combos, list) and all(_strings(c) for c in combos) and _strings(tasks)):
        return None
    if not isinstance(done, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and _finite(v)
        for k, v in done.items()
    ):
        return None
    flags, best, folds_done = (
        listing.get("flags"),
        listing.get("best_text"),
        listing.get("folds_done"),
    )
    if not (
        isinstance(flags, dict)
        and all(isinstance(k, str) and type(v) is int for k, v in flags.items())
        and isinstance(best, str)
        and len(best) <= 200
        and type(folds_done) is int
    ):
        return None
    state = RunState(run_id, history=False, **{k: fields[k] for k in _SCALARS})
    state.combinations, state.tasks, state.done = combos, tasks, dict(done)
    state.listing = Listing(folds_done, best, dict(flags))
    return state


def cached_digest(run: RunDir) -> Path:
    """Where the dashboard keeps the digest it made of a run: the user's cache, named by the
    run folder's path."""
    from dfu_tui.paths import user_cache_dir

    key = hashlib.sha256(str(run.path.resolve()).encode("utf-8", "surrogateescape"))
    return user_cache_dir() / "digests" / f"{key.hexdigest()[:32]}.json"


def read_digest(run: RunDir, mark: tuple[int, int, int]) -> RunState | None:
    """The run's state from its digest (the run's own, else the cache's) when it is sound
    and made from this very log."""
    for path in (run.digest, cached_digest(run)):
        try:
            doc = json.loads(read_regular(path, limit=DIGEST_LIMIT + 1)[:DIGEST_LIMIT])
        except (OSError, ValueError):
            continue
        state = state_from(doc, run.path.name, mark)
        if state is not None:
            return state
    return None


def write_digest(
    run: RunDir, state: RunState, mark: tuple[int, int, int], cached: bool = False
) -> bool:
    """Write a finished run's digest atomically: into its run folder (the supervisor, only
    a folder of ours), or with `cached` into the user's cache (the dashboard); whether it
    was written (another user's folder, a read-only or full disk: not, and nothing else
    changes)."""
    from dfu_tui.paths import atomic_write_text, check_own_dir, private_dir

    if state.status not in FINISHED or state.listing is not None:
        return False
    with contextlib.suppress(OSError):
        target = cached_digest(run) if cached else run.digest
        if cached:
            private_dir(target.parent)
        check_own_dir(target.parent, follow=False)
        atomic_write_text(target, json.dumps(digest_of(state, mark), separators=(",", ":")))
        return True
    return False
