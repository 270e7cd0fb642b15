"""Helpers shared by the benchmark scripts: run the CLI in a real process and time it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, cache: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `dfu-tui ARGS` in a fresh process; return (wall seconds, process)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if cache is not None:
        env["DFU_TUI_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dfu_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
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
