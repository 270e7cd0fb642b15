"""Kappas (unweighted and quadratic) of every branch and combination on the default demo.

Trains the five branches once (3 folds, default settings), evaluates all 31 combinations
with fixed fusion, then re-fuses the stored predictions with learned_alpha, tuned and
stacked for metadata + thermal_map.

    python benchmarks/quality.py [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import latest_summary, run_cli, scratch, sets

ALL = "modalities.use=['metadata','depth_rgb','depth_map','thermal_rgb','thermal_map']"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs = args.runs_dir or scratch("dfu-quality-")
    seconds, _ = run_cli(
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs / "search"),
        *sets(ALL, "modalities.search=true"),
    )
    summary = latest_summary(runs / "search")
    print(f"default demo, 3 folds, all 31 combinations, fixed fusion: {seconds:.0f} s")
    print(f"{'branch / combination':45} {'kappa':>15} {'quadratic_kappa':>17}")
    for b in summary["branches"]:
        m, s = b["mean"], b["std"]
        print(
            f"{b['branch'] + ' alone':45} {m['kappa']:7.3f} ± {s['kappa']:.3f} "
            f"{m['quadratic_kappa']:9.3f} ± {s['quadratic_kappa']:.3f}"
        )
    ranked = sorted(summary["combinations"], key=lambda c: -c["mean"]["kappa"])
    for c in ranked:
        if len(c["modalities"]) < 2:
            continue
        m, s = c["mean"], c["std"]
        print(
            f"{'+'.join(c['modalities']):45} {m['kappa']:7.3f} ± {s['kappa']:.3f} "
            f"{m['quadratic_kappa']:9.3f} ± {s['quadratic_kappa']:.3f}"
        )
    print()
    print("metadata + thermal_map by fusion strategy (3 folds):")
    for strategy in ("fixed", "learned_alpha", "tuned", "stacked"):
        out = runs / strategy
        run_cli(
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(out),
            *sets(f"fusion.strategy={strategy}"),
        )
        (c,) = latest_summary(out)["combinations"]
        alphas = [f.get("mean_alpha") for f in c["folds"] if f.get("mean_alpha") is not None]
        flags = sorted({f"{fl['level']} {fl['rule']}" for f in c["folds"] for fl in f["flags"]})
        shares = [round(f["predicted_share"]["P"], 2) for f in c["folds"]]
        print(
            f"  {strategy:14} kappa {c['mean']['kappa']:.3f} ± {c['std']['kappa']:.3f}  "
            f"quadratic_kappa {c['mean']['quadratic_kappa']:.3f}  train_kappa "
            f"{c['mean']['train_kappa']:.3f}  P share per fold {shares}"
            + (f"  mean alpha per fold {[round(a, 3) for a in alphas]}" if alphas else "")
            + (f"  flags {flags}" if flags else "")
        )


if __name__ == "__main__":
    main()
