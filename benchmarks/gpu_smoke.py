"""GPU placement for real, on a machine with GPUs: two image tasks at once, splitting the
GPUs (one device each) and then sharing one (`executor.tasks_per_gpu = 2`, memory growth);
both runs must complete with no out-of-memory, each image task on the device it was given.

    python benchmarks/gpu_smoke.py

On a machine without GPUs it says so in one line and checks nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from _common import run_cli, scratch, sets

from dfu_tui.runs.resources import detect_gpus

BASE = (
    "modalities.use=['thermal_map', 'depth_map']",
    "image_model.epochs=5",
    "image_model.mixed_precision=true",
    "radar.enabled=false",
)


def placed(run: Path) -> dict[str, str]:
    log = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]
    return {e["task"]: e.get("gpu", "?") for e in log if e["kind"] == "task_started"}


def main() -> None:
    gpus = detect_gpus()
    if not gpus:
        print("no GPU on this machine (CUDA_VISIBLE_DEVICES / nvidia-smi -L): nothing to check")
        return
    print(f"GPUs: {gpus}")
    work = scratch("dfu-gpu-")
    for per_gpu in (1, 2):
        runs = work / f"per{per_gpu}"
        seconds, proc = run_cli(
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(runs),
            "--jobs",
            "2",
            *sets(*BASE, f"executor.tasks_per_gpu={per_gpu}"),
        )
        run = next(runs.iterdir())
        oom = "out of memory" in proc.stderr.lower() or "OOM" in proc.stderr
        print(
            f"tasks_per_gpu={per_gpu}: completed in {seconds:.1f} s, out-of-memory: {oom}; "
            f"devices: {placed(run)}"
        )


if __name__ == "__main__":
    main()
