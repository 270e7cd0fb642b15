"""What a final model costs: `dfu-tui fit` against one cross-validation fold of the same run,
the model's size on disk, and `dfu-tui predict`'s throughput (visits per second) for a
metadata-only model and for metadata + thermal_map.

    python benchmarks/model.py                 # a default run on the demo first (~1-2 min)
    python benchmarks/model.py --run RUN_DIR   # a completed default run (metadata+thermal_map)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_cli, scratch  # noqa: E402


def fold_seconds(run: Path) -> float:
    """The mean wall time of one fold's tasks (their seconds summed: on one core)."""
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]
    per: dict[int, float] = {}
    for e in events:
        if e["kind"] == "branch_finished":
            per[e["fold"]] = per.get(e["fold"], 0.0) + float(e.get("seconds") or 0.0)
    return sum(per.values()) / max(1, len(per))


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    args = parser.parse_args()
    base = scratch("dfu-model-")
    cache = base / "cache"
    if args.run is None:
        seconds, _ = run_cli(
            "run", "configs/default.toml", "--runs-dir", str(base / "runs"), cache=cache
        )
        run = next((base / "runs").iterdir())
        print(f"default run: {seconds:.0f} s")
    else:
        run = base / args.run.name
        shutil.copytree(args.run, run)
        for old in ("model",):
            shutil.rmtree(run / old, ignore_errors=True)
    os.environ["DFU_TUI_CACHE_DIR"] = str(cache)  # where the run's demo is (made if needed)
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import resolve_root

    fold = fold_seconds(run)
    for combination in ("metadata", "metadata+thermal_map"):
        out = base / combination.replace("+", "_")
        start = time.perf_counter()
        run_cli("fit", str(run), "--combination", combination, "--output", str(out), cache=cache)
        fit = time.perf_counter() - start
        data = resolve_root(load_config(run / "config.toml").dataset)
        predict_args = ["predict", str(out), str(data), "--output"]
        start = time.perf_counter()
        _, proc = run_cli(*predict_args, str(base / "p.csv"), cache=cache)
        wall = time.perf_counter() - start
        visits = len((base / "p.csv").read_text().splitlines()) - 1
        print(
            f"{combination}: fit {fit:.1f} s ({fit / fold:.2f} x one CV fold's "
            f"{fold:.1f} s of tasks), model {size_mb(out):.2f} MB, predict {visits} visits in "
            f"{wall:.1f} s = {visits / wall:.0f} visits/s (a fresh process, imports included)"
        )


if __name__ == "__main__":
    main()
