"""Time to fit the metadata branch on one fold of a real-format CSV of about 900 rows.

python benchmarks/metadata_fold.py
"""

from __future__ import annotations

import time

from _common import scratch

from dfu_tui.config import MetadataModelConfig
from dfu_tui.data.demo import generate_demo
from dfu_tui.data.metadata import read_metadata
from dfu_tui.engine.folds import make_folds
from dfu_tui.engine.metadata_branch import train_metadata_branch


def main() -> None:
    root = scratch("dfu-meta-") / "demo"
    generate_demo(root, patients=290, seed=0)
    start = time.perf_counter()
    table = read_metadata(
        root / "DataMaster_Processed_V12_WithMissing.csv", "Healing Phase Abs", "Patient#"
    )
    read = time.perf_counter() - start
    folds = make_folds(table.labels, table.patients, 3, 42)
    frame = table.frame[table.feature_columns]
    print(f"{len(table.keys)} rows, {len(table.feature_columns)} features, read in {read:.2f} s")
    for fold in folds:
        start = time.perf_counter()
        train_metadata_branch(
            frame, table.labels, table.patients, fold.train, fold.val, MetadataModelConfig(), seed=0
        )
        print(
            f"fold {fold.number}: fit + predict {time.perf_counter() - start:.2f} s "
            f"(300 trees, all cores)"
        )


if __name__ == "__main__":
    main()
