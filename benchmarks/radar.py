"""What the leakage radar adds to a metadata fold, and what batching buys.

python benchmarks/radar.py [--patients N]

Side by side in one run, on a demo CSV of about 900 rows (as the clinic's file), for each
of the 3 folds: the metadata fold alone (fit + predict, 300 trees) and the radar of that
fold (batched permutation importance on the validation fold + single-feature kappas on the
training fold), with the forest on one thread as a worker on 2 cores runs it; then, for
fold 1, scikit-learn's own `permutation_importance` on the same fitted model.
Also prints the single-feature top five and the planted-leak check.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from _common import scratch
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer

from dfu_tui.config import Config
from dfu_tui.data.demo import generate_demo
from dfu_tui.data.metadata import read_metadata
from dfu_tui.engine.folds import make_folds
from dfu_tui.engine.metadata_branch import train_metadata_branch
from dfu_tui.engine.radar import kappa, rank, single_feature_kappas


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=290)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from dfu_tui.engine.training import fold_radar

    root = scratch("dfu-radar-") / "demo"
    generate_demo(root, patients=args.patients, seed=0)
    table = read_metadata(
        root / "DataMaster_Processed_V12_WithMissing.csv", "Healing Phase Abs", "Patient#"
    )
    cfg = Config()
    model_cfg = dataclasses.replace(cfg.metadata_model, n_jobs=1)
    frame = table.frame[table.feature_columns]
    folds = make_folds(table.labels, table.patients, 3, 42)
    print(f"{len(table.keys)} rows, {len(table.feature_columns)} features, 3 folds")
    fold_s, radar_s = [], []
    for fold in folds:
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = train_metadata_branch(
                frame, table.labels, table.patients, fold.train, fold.val, model_cfg, 0
            )
            fold_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            fold_radar(cfg, frame, table.labels, table.patients, fold, out, 0)
            radar_s.append(time.perf_counter() - start)
    f, r = statistics.median(fold_s), statistics.median(radar_s)
    print(f"metadata fold (fit + predict, 300 trees, 1 thread): median {f:.2f} s")
    print(
        f"radar of the fold: median {r:.2f} s  ->  fold with radar / without = {(f + r) / f:.2f}x"
    )

    fold = folds[0]
    out = train_metadata_branch(
        frame, table.labels, table.patients, fold.train, fold.val, model_cfg, 0
    )
    model = out.info["model"]
    start = time.perf_counter()
    permutation_importance(
        model,
        frame.iloc[fold.val],
        table.labels[fold.val],
        scoring=make_scorer(kappa),
        n_repeats=cfg.radar.repeats,
        random_state=0,
    )
    sk = time.perf_counter() - start
    start = time.perf_counter()
    fold_radar(cfg, frame, table.labels, table.patients, fold, out, 0)
    ours = time.perf_counter() - start
    print(
        f"fold 1 importance: sklearn permutation_importance {sk:.2f} s vs whole radar "
        f"(batched importance + single-feature kappas) {ours:.2f} s = {sk / ours:.1f}x faster"
    )
    single = single_feature_kappas(frame, table.labels, table.patients, 3, 42)
    print("single-feature kappa top five (unweighted, whole file, patient-grouped 3-fold CV):")
    for c in rank(single)[:5]:
        print(f"  {c}: {single[c]:.3f}")


if __name__ == "__main__":
    main()
