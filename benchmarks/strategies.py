"""The cost of comparing fusion strategies in one run (`fusion.compare`), measured side by
side: a run scoring four strategies against runs of one strategy, same data and seed,
alternating rounds (this machine is shared and noisy: medians).

    python benchmarks/strategies.py [--rounds 2] [--patients 60] [--epochs 6]

The four strategies share the branch predictions, and `tuned` / `stacked` need inner
out-of-fold predictions anyway, so the fair baseline is one run of `tuned` (same training);
the ratio against `fixed` alone (no inner training) is printed too, and that of fusions which
need no inner predictions (fixed, learned_alpha, another fixed weighting) against `fixed`.
"""

from __future__ import annotations

import argparse
import statistics

from _common import latest_summary, run_cli, scratch, sets

FOUR = "fusion.compare=['fixed','learned_alpha','tuned','stacked']"
# fusions that need no inner out-of-fold predictions: no extra training at all
NO_INNER = "fusion.compare=['fixed','learned_alpha',{metadata=0.5,image=0.5}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    work = scratch("dfu-strategies-")
    base = (
        f"demo.patients={args.patients}",
        "data.image_size=32",
        "cv.folds=3",
        "cv.inner_folds=3",
        f"image_model.epochs={args.epochs}",
        "image_model.patience=3",
        "radar.enabled=false",
    )
    variants = {
        "four strategies (reference fixed)": (FOUR,),
        "tuned alone": ("fusion.strategy=tuned",),
        "fixed alone": (),
        "fixed, learned_alpha, 0.50/0.50 (no inner folds)": (NO_INNER,),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    run_cli("validate", "configs/default.toml", *sets(*base), cache=work / "cache")  # the crops
    for r in range(args.rounds):
        for name, extra in variants.items():
            runs = work / f"{r}-{len(times[name])}-{name.split()[0]}"
            seconds, _ = run_cli(
                "run",
                "configs/default.toml",
                "--runs-dir",
                str(runs),
                "--jobs",
                "1",
                *sets(*base, *extra),
                cache=work / "cache",
            )
            times[name].append(seconds)
            if extra == (FOUR,) and r == 0:
                table = latest_summary(runs)["combinations"][0]["strategies"]
                for row in table["rows"]:
                    v = row.get("versus_reference")
                    diff = f"{v['mean_difference']:+.3f} {v['outcome']}" if v else "reference"
                    print(
                        f"  {row['name']:>22}: quadratic kappa {row['mean']['quadratic_kappa']:.3f}"
                        f" (n={row['n']}), vs fixed {diff}, flags {len(row['flags'])}"
                    )
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, values in times.items():
        print(f"{name}: median {med[name]:.1f} s over {len(values)} rounds {values}")
    four = med["four strategies (reference fixed)"]
    print(f"ratio four strategies / tuned alone: {four / med['tuned alone']:.3f} (target <= 1.1)")
    print(f"ratio four strategies / fixed alone: {four / med['fixed alone']:.3f} (inner training)")
    three = med["fixed, learned_alpha, 0.50/0.50 (no inner folds)"]
    print(
        f"ratio three fusions without inner folds / fixed alone: {three / med['fixed alone']:.3f}"
    )


if __name__ == "__main__":
    main()
