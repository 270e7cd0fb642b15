"""Helpers for tests that drive real `dfu-tui` processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def run_dfu(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m dfu_tui ARGS` in the repository root with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "dfu_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=timeout,
    )


def wait_for(check: Callable[[], T], timeout: float = 240.0, every: float = 0.2) -> T:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")
