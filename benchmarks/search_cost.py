"""Cost of a search over all 31 combinations with branch reuse, against the training of the
five branches once and against training every combination's branches from scratch.

Measured side by side in one run on a small demo (40 patients, 32 px, 2 folds, 3 epochs).

    python benchmarks/search_cost.py
"""

from __future__ import annotations

import itertools

from _common import run_cli, scratch, sets

MODALITIES = ["metadata", "depth_rgb", "depth_map", "thermal_rgb", "thermal_map"]
SMALL = (
    "demo.patients=40",
    "data.image_size=32",
    "cv.folds=2",
    "image_model.epochs=3",
    "image_model.patience=3",
    "metadata_model.n_estimators=100",
)


def use(combo: tuple[str, ...] | list[str]) -> str:
    return "modalities.use=[" + ",".join(f"'{m}'" for m in combo) + "]"


def main() -> None:
    runs = scratch("dfu-search-")
    base = ("run", "configs/default.toml", "--runs-dir", str(runs))
    run_cli("validate", "configs/default.toml", *sets(*SMALL, use(MODALITIES)))  # warm caches
    five, _ = run_cli(*base, *sets(*SMALL, use(MODALITIES)))
    search, _ = run_cli(*base, *sets(*SMALL, use(MODALITIES), "modalities.search=true"))
    from_scratch = 0.0
    combos = [c for k in range(1, 6) for c in itertools.combinations(MODALITIES, k)]
    for combo in combos:
        seconds, _ = run_cli(*base, *sets(*SMALL, use(combo)))
        from_scratch += seconds
    print(f"five branches once (one combination):      {five:7.1f} s")
    print(
        f"search, 31 combinations, branch reuse:     {search:7.1f} s  "
        f"ratio to five branches {search / five:.2f}"
    )
    print(
        f"31 combinations, each trained from scratch: {from_scratch:7.1f} s  "
        f"ratio to reuse {from_scratch / search:.1f}"
    )


if __name__ == "__main__":
    main()
