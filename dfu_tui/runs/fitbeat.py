"""A detached fit's sign of life: `RUN/fit-heartbeat.json`, rewritten every heartbeat by
`dfu_tui.runs.fitjob` while it runs and removed when it ends; read by `status` and the
dashboard (nothing heavy is imported here: the dashboard reads it)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from dfu_tui.paths import atomic_write_text
from dfu_tui.runs.events import read_regular
from dfu_tui.runs.rundir import RunDir


def write_fit_heartbeat(run: RunDir, output: Path, doing: str, every: float) -> None:
    """A detached fit's sign of life in the run folder (`RunDir.fit_heartbeat`)."""
    from dfu_tui.paths import check_own_dir

    doc = {
        "pid": os.getpid(),
        "at": time.time(),
        "every": every,
        "doing": doing[:200],
        "output": str(output),
    }
    with contextlib.suppress(OSError):  # a full disk: the fit goes on, only unannounced
        check_own_dir(run.path, follow=False)
        atomic_write_text(run.fit_heartbeat, json.dumps(doc))


def fit_activity(run: RunDir, now: float | None = None) -> dict[str, Any] | None:
    """What a detached fit of the run is doing, from its heartbeat file: `{"state":
    "fitting" or "stale", "doing", "age_s", "pid", "output", "at", "every"}`; None when no
    fit runs. The file is untrusted: read as a small regular file, every field checked."""
    try:
        doc = json.loads(read_regular(run.fit_heartbeat, limit=4096))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    pid, doing, output = doc.get("pid"), doc.get("doing"), doc.get("output")
    try:
        at, every = _number(doc.get("at")), _number(doc.get("every"))
    except ValueError:
        return None
    if not (type(pid) is int and isinstance(doing, str) and isinstance(output, str)):
        return None
    if every <= 0:
        return None
    found = {"doing": doing[:200], "pid": pid, "output": output[:4096], "at": at, "every": every}
    return {**found, **fit_state(found, time.time() if now is None else now)}


def fit_state(fit: dict[str, Any], now: float) -> dict[str, Any]:
    """`state` ("fitting", or "stale" once two heartbeats are missed) and `age_s` of a fit
    `fit_activity` read, at `now` (a screen shows a fit that died as stale without reading
    its file again)."""
    age = max(0.0, now - fit["at"])
    return {"state": "fitting" if age <= 2 * fit["every"] else "stale", "age_s": round(age, 1)}


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)
