"""Background-run figures: stop -> cancelled time, time for `status` to flag a killed
supervisor as stale, and the wall time of configs/default.toml with --jobs 1 vs --jobs 2.

    python benchmarks/background.py
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from _common import run_cli, scratch

from dfu_tui.runs.state import load_state


def wait(check, timeout: float = 600.0, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit("timed out")


def detached(runs: Path, *extra: str) -> Path:
    _, proc = run_cli("run", "configs/default.toml", "--runs-dir", str(runs), "--detach", *extra)
    return runs / proc.stdout.strip()


def epoch_seen(run: Path) -> bool:
    return bool(load_state(run).epochs)


def main() -> None:
    runs = scratch("dfu-bg-")
    run_cli("validate", "configs/default.toml")  # demo data and crop cache ready
    heartbeat = float(os.environ.get("DFU_TUI_HEARTBEAT", "5"))

    run = detached(runs / "stop")
    wait(lambda: epoch_seen(run))
    start = time.perf_counter()
    run_cli("stop", str(run))
    print(
        f"stop -> cancelled (during a CNN epoch): {time.perf_counter() - start:.2f} s "
        f"(state {load_state(run).status})"
    )

    run = detached(runs / "stale")
    wait(lambda: epoch_seen(run))
    os.kill(int((run / "lock").read_text()), signal.SIGKILL)
    killed = time.perf_counter()

    def stale() -> bool:
        _, proc = run_cli("status", str(run), "--json")
        return json.loads(proc.stdout)["status"] == "stale"

    wait(stale, every=0.2)
    print(
        f"kill -9 supervisor -> status 'stale': {time.perf_counter() - killed:.1f} s "
        f"(heartbeat {heartbeat:g} s, limit {2 * heartbeat:g} s + one status call)"
    )
    run_cli("stop", str(run))

    for jobs in (1, 2):
        seconds, _ = run_cli(
            "run", "configs/default.toml", "--runs-dir", str(runs / f"j{jobs}"), "--jobs", str(jobs)
        )
        print(f"configs/default.toml --jobs {jobs}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
