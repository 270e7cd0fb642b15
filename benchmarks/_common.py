"""Helpers shared by the benchmark scripts: run the CLI in a real process and time it."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SCRATCH: list[Path] = []


def _clean() -> None:
    for path in _SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # atexit cleans up on the way out


def scratch(prefix: str) -> Path:
    """A new temporary folder, removed when the benchmark ends (normally, on an error, on
    Ctrl-C or SIGTERM): benchmarks leave nothing behind."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not _SCRATCH:
        atexit.register(_clean)
        signal.signal(signal.SIGTERM, _terminated)
    _SCRATCH.append(path)
    return path


def run_cli(
    *args: str, cache: Path | None = None, code: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `dfu-tui ARGS` in a fresh process (of the tree at `code`: another revision's
    checkout; default this one); return (wall seconds, process)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if cache is not None:
        env["DFU_TUI_CACHE_DIR"] = str(cache)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dfu_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=code or ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"dfu-tui {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def latest_summary(runs: Path) -> dict:
    run = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    return json.loads((run / "summary.json").read_text())
