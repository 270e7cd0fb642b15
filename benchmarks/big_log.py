"""Reading a long event log: peak memory and time of `dfu-tui status RUN --json` on a log of
`--mb` megabytes (heartbeats and epoch lines of a long run, as a run that trained for days
writes), against the log's size. The reader applies the log in 4 MB chunks.

    python benchmarks/big_log.py [--mb 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import scratch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "runs" / "20261128-133945-3b5598"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    run = scratch("dfu-biglog-") / FIXTURE.name
    shutil.copytree(FIXTURE, run)
    heartbeat = json.dumps({"v": 1, "kind": "heartbeat", "ts": 1.0, "pid": 1}) + "\n"
    epoch = (
        json.dumps(
            {
                "v": 1,
                "kind": "epoch",
                "ts": 1.0,
                "task": "fold1-depth_map",
                "fold": 1,
                "branch": "depth_map",
                "epoch": 1,
                "max_epochs": 3,
                "loss": 1.0,
                "train_kappa": 0.1,
                "val_kappa": 0.1,
            }
        )
        + "\n"
    )
    block = (heartbeat * 50 + epoch) * 200
    with open(run / "events.jsonl", "a", encoding="utf-8") as fh:
        while fh.tell() < args.mb * 1_000_000:
            fh.write(block)
    size = (run / "events.jsonl").stat().st_size
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dfu_tui", "status", str(run), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"log {size / 1e6:.0f} MB: status exit {proc.returncode}, {took:.1f} s, peak RSS "
        f"{peak:.0f} MB ({peak / (size / 1e6):.2f} MB per MB of log)"
    )
    shutil.rmtree(run.parent)


if __name__ == "__main__":
    main()
