"""Collapse flags before and after the calibrated rules, and the paired verdict, on the demo.

1. `configs/default.toml` with `cv.repeats = 3` (9 folds of metadata + thermal_map): per fold,
   the CNN's epochs, the epochs the previous rules (v1, replayed here on the recorded shares)
   called COLLAPSE, and the COLLAPSE flags the calibrated rules raised; then the verdict on
   quadratic kappa with its paired intervals.
2. A planted collapse: the same CNN with learning rate 0.5, which drives it to one class.
3. The `learned_alpha` fusion of the seed note's V1 (fold-level flags).

    python benchmarks/collapse_flags.py [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from _common import ROOT, latest_summary, run_cli, scratch, sets

CLASSES = ("I", "P", "R")


def v1_collapses(e: dict) -> bool:
    """The rules before calibration (absolute cap 0.90, margin 0.10 / 0.20, entropy 0.5)."""
    t = [e["val_true_share"][c] for c in CLASSES]
    p = [e["val_predicted_share"][c] for c in CLASSES]
    if any(ti > 0 and pi == 0 for ti, pi in zip(t, p, strict=True)):
        return True
    if any(pi > 0.90 or pi > ti + 0.20 for ti, pi in zip(t, p, strict=True)):
        return True

    def h(xs: list[float]) -> float:
        return -sum(x * math.log(x) for x in xs if x > 0)

    return h(t) > 0 and h(p) < 0.5 * h(t)


def epoch_table(run: Path) -> list[tuple[str, int, int, int]]:
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]
    rows = []
    for task in dict.fromkeys(e["task"] for e in events if e["kind"] == "epoch"):
        epochs = [e for e in events if e["kind"] == "epoch" and e["task"] == task]
        before = sum(v1_collapses(e) for e in epochs if "val_true_share" in e)
        after = len(
            {
                e["epoch"]
                for e in events
                if e["kind"] == "flag"
                and e.get("scope") == "epoch"
                and e["task"] == task
                and e["level"] == "collapse"
            }
        )
        rows.append((task, len(epochs), before, after))
    return rows


def report(title: str, run: Path) -> None:
    print(f"\n{title}")
    head = f"{'task':24} {'epochs':>6} {'v1 COLLAPSE epochs':>19}"
    print(f"{head} {'epochs raising COLLAPSE now':>28}")
    total = [0, 0, 0]
    for task, n, before, after in epoch_table(run):
        print(f"{task:24} {n:6d} {before:19d} {after:28d}")
        total = [total[0] + n, total[1] + before, total[2] + after]
    print(f"{'all':24} {total[0]:6d} {total[1]:19d} {total[2]:28d}")


def verdict_lines(summary: dict) -> None:
    for c in summary["combinations"]:
        v = c["verdict"]
        print(f"verdict {'+'.join(c['modalities'])} on {v['metric']}:", end=" ")
        print(", ".join(f"{t} {'yes' if v[t] else 'no'}" for t in ("minimum", "expected", "ideal")))
        for cr in v["criteria"]:
            if cr.get("paired"):
                lo, hi = cr["interval"]
                print(
                    f"  {cr['name']}: {cr['value']:+.3f} vs {cr['versus']}, "
                    f"95% CI {lo:+.3f} to {hi:+.3f} over {cr['folds']} folds: {cr['outcome']}"
                )
            else:
                print(f"  {cr['name']}: {cr['value']} ({'ok' if cr['ok'] else 'FAIL'})")
        for r in c["repeats"]:
            same = r.get("paired", {}).get("quadratic_kappa")
            print(
                f"  repeat {r['repeat']}: quadratic kappa {same:.3f} on the same rows, "
                f"{r['quadratic_kappa']:.3f} on all samples"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs = args.runs_dir or scratch("dfu-flags-")
    seconds, _ = run_cli(
        "run", "configs/default.toml", "--runs-dir", str(runs / "default"), *sets("cv.repeats=3")
    )
    run = max((runs / "default").iterdir(), key=lambda p: p.stat().st_mtime)
    report(f"configs/default.toml x 3 repeats ({seconds:.0f} s)", run)
    verdict_lines(latest_summary(runs / "default"))

    seconds, _ = run_cli(
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs / "planted"),
        *sets("image_model.learning_rate=0.5", "modalities.use=['thermal_map']"),
    )
    run = max((runs / "planted").iterdir(), key=lambda p: p.stat().st_mtime)
    report(f"planted collapse: thermal_map CNN at learning rate 0.5 ({seconds:.0f} s)", run)
    folds = latest_summary(runs / "planted")["combinations"][0]["folds"]
    for f in folds:
        rules = sorted({fl["rule"] for fl in f["flags"] if fl["level"] == "collapse"})
        print(f"fold {f['fold']} fold-level COLLAPSE rules: {', '.join(rules) or '-'}")

    seconds, _ = run_cli(
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs / "alpha"),
        *sets("fusion.strategy='learned_alpha'"),
    )
    for f in latest_summary(runs / "alpha")["combinations"][0]["folds"]:
        rules = sorted({fl["rule"] for fl in f["flags"] if fl["level"] == "collapse"})
        alpha = f.get("mean_alpha")
        print(
            f"learned_alpha fold {f['fold']}: mean alpha {alpha:.3f}, "
            f"COLLAPSE rules: {', '.join(rules) or '-'}"
        )
    print(f"\nruns kept in {runs} (repository {ROOT.name})")


if __name__ == "__main__":
    main()
