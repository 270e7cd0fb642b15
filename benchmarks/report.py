"""Report figures: `dfu-tui report` on a real 10-fold, 31-combination run (every modality,
searched), timed as a user runs it (a fresh process), with the file's size and figure count.

    python benchmarks/report.py [--run RUN_DIR] [--repeat 3]

Without --run it first trains the run (demo data, 32 px, 2 epochs: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from _common import run_cli, scratch, sets


def make_run(work: Path) -> Path:
    runs = work / "runs"
    seconds, _ = run_cli(
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs),
        "--jobs",
        "2",
        *sets(
            "demo.patients=60",
            "data.image_size=32",
            "cv.folds=10",
            "image_model.epochs=2",
            "image_model.threads=1",
            "modalities.search=true",
            "modalities.use=['metadata','depth_rgb','depth_map','thermal_rgb','thermal_map']",
            "radar.enabled=false",
        ),
        cache=work / "cache",
    )
    (run,) = runs.iterdir()
    print(f"trained the run in {seconds:.0f} s: {run}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="an existing run directory to report on")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = scratch("dfu-report-")
    run = args.run or make_run(work)
    times = []
    output = work / "report.html"
    for _ in range(args.repeat):
        seconds, _ = run_cli("report", str(run), "--output", str(output))
        times.append(seconds)
    page = output.read_text()
    figures = len(re.findall(r"<figure ", page))
    started = next(
        json.loads(line)
        for line in (run / "events.jsonl").read_text().splitlines()
        if '"run_started"' in line
    )
    print(
        f"dfu-tui report, {run.name} ({started['folds']} folds x "
        f"{len(started['combinations'])} combinations): "
        f"median {statistics.median(times):.2f} s over {len(times)} runs "
        f"(min {min(times):.2f}, max {max(times):.2f}); "
        f"{output.stat().st_size / 1e6:.2f} MB, {figures} figures"
    )


if __name__ == "__main__":
    main()
