"""The same-columns null of a with/without feature comparison, before and after averaging
each side over several forests (`radar.forest_seeds`).

Both sides see the same columns and differ only in the forests' seeds: whatever difference
they show is forest noise, the floor under any with/without comparison. Printed for one
forest per side (before) and for `--seeds` forests per side (after), on the demo's
metadata, patient-grouped folds, the criteria's scale (quadratic kappa) and, for scale,
the paired difference of dropping `DFU#` alone (a column that carries nothing).

    python benchmarks/forest_seeds.py [--patients 160] [--folds 5] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import scratch

from dfu_tui.config import MetadataModelConfig
from dfu_tui.data.demo import write_demo
from dfu_tui.data.metadata import read_metadata
from dfu_tui.engine.folds import make_folds
from dfu_tui.engine.metadata_branch import seed_averaged_proba, seed_null
from dfu_tui.engine.paired import paired_difference, test_train_ratio

META = "DataMaster_Processed_V12_WithMissing.csv"


def describe(name: str, a: list[float], b: list[float], ratio: float) -> None:
    d = paired_difference(a, b, ratio)
    low, high = d["ci95"]
    print(
        f"{name:<38} mean {d['mean_difference']:+.4f}  sd {d['sd_difference']:.4f}  "
        f"95% CI {low:+.4f} to {high:+.4f}  "
        f"{'DISTINGUISHABLE' if d['distinguishable'] else 'indistinguishable from 0'}  "
        f"(max |diff| {max(abs(x) for x in d['differences']):.4f}, {d['folds']} folds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trees", type=int, default=300)
    args = parser.parse_args()
    root = write_demo(scratch("dfu-bench-") / "demo", patients=args.patients, seed=0).root
    table = read_metadata(root / META, "Healing Phase Abs", "Patient#")
    frame = table.frame[list(table.feature_columns)]
    labels, groups = table.labels, table.patients
    folds = [(f.train, f.val) for f in make_folds(labels, groups, args.folds, 42)]
    ratio = test_train_ratio([{"n_val": len(v), "n_train": len(t)} for t, v in folds])
    cfg = MetadataModelConfig(n_estimators=args.trees, n_jobs=-1)
    print(
        f"demo {args.patients} patients, {len(labels)} rows, {args.folds} grouped folds, "
        f"{args.trees} trees, quadratic kappa, Nadeau-Bengio corrected intervals"
    )
    for seeds in (1, args.seeds):
        start = time.perf_counter()
        a, b = seed_null(frame, labels, folds, cfg, 42, seeds)
        took = time.perf_counter() - start
        describe(f"same columns, {seeds} forest(s) per side", a, b, ratio)
        print(f"{'':<38} ({took:.1f} s for both sides)")
    from dfu_tui.engine.curve import cohen_kappa

    without = frame.drop(columns=["DFU#"])
    for seeds in (1, args.seeds):
        a, b = [], []
        for k, (train, val) in enumerate(folds):
            pa = seed_averaged_proba(frame, labels, train, val, cfg, 42 + 1000 * k, seeds)
            pb = seed_averaged_proba(without, labels, train, val, cfg, 42 + 1000 * k, seeds)
            a.append(cohen_kappa(labels[val], pa.argmax(axis=1), quadratic=True))
            b.append(cohen_kappa(labels[val], pb.argmax(axis=1), quadratic=True))
        describe(f"with minus without DFU#, {seeds} forest(s)", a, b, ratio)
    spread = [
        cohen_kappa(
            labels[folds[0][1]],
            seed_averaged_proba(frame, labels, *folds[0], cfg, 42 + 7919 * s, 1).argmax(axis=1),
            quadratic=True,
        )
        for s in range(10)
    ]
    print(
        f"one split, 10 single forests: quadratic kappa {min(spread):.3f} to {max(spread):.3f} "
        f"(sd {statistics.stdev(spread):.3f}, mean {np.mean(spread):.3f})"
    )


if __name__ == "__main__":
    main()
