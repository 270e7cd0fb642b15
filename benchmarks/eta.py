"""How good is the ETA along a run? Replays a finished run's log event by event and, at each
point, compares the range the dashboard showed (`RunState.eta_range`) with the time the run
really had left.

    python benchmarks/eta.py                 # a default run on the demo (several minutes)
    python benchmarks/eta.py --run RUN_DIR   # an existing finished run
    python benchmarks/eta.py --set cv.folds=2 --set image_model.epochs=6   # a shorter run

Prints, at each tenth of the run: the range, the real time left, whether it was inside, and
the midpoint's error in % of the real time left; then the share of points inside the range
and the worst midpoint error from one third of the run on (the target: within ±25 %).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_cli, scratch  # noqa: E402
from dfu_tui.runs.state import RunState  # noqa: E402


def replay(run: Path) -> list[tuple[float, float, tuple[float, float] | None]]:
    """(fraction of the run, seconds really left, the range shown then) at every event."""
    lines = (run / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(x) for x in lines if x.strip()]
    start = next(e["ts"] for e in events if e["kind"] == "run_started")
    end = next(e["ts"] for e in reversed(events) if e["kind"] == "run_finished")
    state = RunState(run.name)
    out = []
    for e in events:
        state.apply(e)
        if e["kind"] in ("run_finished", "run_started"):
            continue
        t = float(e["ts"])
        out.append(((t - start) / (end - start), end - t, state.eta_range(now=t)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a finished run to replay")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config key=value")
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--keep", type=Path, default=None, help="copy the new run here")
    args = parser.parse_args()
    run = args.run
    if run is None:
        base = scratch("dfu-eta-")
        sets = [x for s in args.sets for x in ("--set", s)]
        seconds, proc = run_cli(
            "run", "configs/default.toml", "--runs-dir", str(base / "runs"),
            "--jobs", args.jobs, *sets, cache=base / "cache",
        )  # fmt: skip
        run = next((base / "runs").iterdir())
        print(f"ran {run.name} in {seconds:.0f} s")
        if args.keep is not None:
            import shutil

            shutil.copytree(run, args.keep / run.name)
    points = replay(run)
    print(f"{'at':>5} {'range shown':>17} {'really left':>12} {'inside':>7} {'mid error':>10}")
    shown = set()
    for fraction, left, span in points:
        tenth = int(fraction * 10)
        if tenth in shown:
            continue
        shown.add(tenth)
        if span is None:
            print(f"{fraction:5.0%} {'estimating':>17} {left:11.0f}s")
            continue
        mid = (span[0] + span[1]) / 2
        inside = span[0] <= left <= span[1]
        error = (mid - left) / left if left > 0 else 0.0
        rng = f"{span[0]:.0f}-{span[1]:.0f}s"
        print(f"{fraction:5.0%} {rng:>17} {left:11.0f}s {str(inside):>7} {error:+10.0%}")
    late = [(left, span) for f, left, span in points if f >= 1 / 3 and left > 0]
    ranged = [(left, span) for left, span in late if span is not None]
    hits = sum(span[0] <= left <= span[1] for left, span in ranged)
    errors = [abs((span[0] + span[1]) / 2 - left) / left for left, span in ranged]
    print(
        f"from one third of the run on: {len(ranged)} of {len(late)} points had a range, "
        f"{hits} inside it ({hits / max(1, len(ranged)):.0%}); midpoint error median "
        f"{sorted(errors)[len(errors) // 2] if errors else float('nan'):.0%}, worst "
        f"{max(errors) if errors else float('nan'):.0%} (target: within 25 %)"
    )


if __name__ == "__main__":
    main()
