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
    fold_s: list[float] = []
    radar_s: dict[int, list[float]] = {1: [], 2: []}
    for fold in folds:
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = train_metadata_branch(
                frame, table.labels, table.patients, fold.train, fold.val, model_cfg, 0
            )
            fold_s.append(time.perf_counter() - start)
            for threads in (1, 2):
                start = time.perf_counter()
                fold_radar(cfg, frame, table.labels, table.patients, fold, out, 0, threads)
                radar_s[threads].append(time.perf_counter() - start)
    f = statistics.median(fold_s)
    print(f"metadata fold (fit + predict, 300 trees, 1 thread): median {f:.2f} s")
    for threads, why in ((1, "a --jobs 2 worker: no free core"), (2, "both cores free")):
        r = statistics.median(radar_s[threads])
        print(
            f"radar of the fold on {threads} thread(s) ({why}): median {r:.2f} s  ->  "
            f"fold with radar / without = {(f + r) / f:.2f}x"
        )
    importance_only(cfg, frame, table, folds[0], model_cfg, args.repeats)

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


def importance_only(cfg, frame, table, fold, model_cfg, rounds: int) -> None:
    """Fold 1's permutation importance alone, side by side: every permuted row through the
    whole forest (before) and through the trees it can change (now), one thread each."""
    import numpy as np

    from dfu_tui.engine.radar import (
        forest_predict,
        permutation_importances,
        plain_predict,
        radar_inputs,
    )

    out = train_metadata_branch(
        frame, table.labels, table.patients, fold.train, fold.val, model_cfg, 0
    )
    forest, matrix, groups_of = radar_inputs(out.info["model"], frame, fold.val)
    names = list(frame.columns)
    forest.n_jobs = 1
    ways = {
        "whole forest, every row": plain_predict(lambda rows: forest.predict(rows)),
        "changed trees only": forest_predict(forest, 1),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    results = {}
    for _ in range(rounds):
        for name, predict in ways.items():  # alternating: the same load for both
            start = time.perf_counter()
            results[name] = permutation_importances(
                predict,
                matrix,
                table.labels[fold.val],
                cfg.radar.repeats,
                0,
                names,
                groups_of,
            )
            times[name].append(time.perf_counter() - start)
    before, now = (statistics.median(times[k]) for k in ways)
    same = all(
        np.array_equal(
            getattr(results["whole forest, every row"], a),
            getattr(results["changed trees only"], a),
        )
        for a in ("mean", "std")
    )
    print(
        f"fold 1 permutation importance ({cfg.radar.repeats} repeats, 1 thread): whole forest "
        f"on every row {before:.2f} s, changed trees only {now:.2f} s = {before / now:.2f}x "
        f"faster; identical importances: {same}"
    )


if __name__ == "__main__":
    main()
