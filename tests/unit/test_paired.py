"""Paired comparisons, scores on the same rows, repeated folds and the temporal hold-out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfu_tui.config import load_config
from dfu_tui.engine.folds import HOLDOUT, fold_label, make_cv, temporal_holdout
from dfu_tui.engine.judge import judge_combination
from dfu_tui.engine.paired import mean_sd, paired_difference
from dfu_tui.engine.records import CASEMIX
from dfu_tui.errors import InputError


def test_corrected_interval_is_wider_by_the_nadeau_bengio_factor() -> None:
    from scipy.stats import t

    a = [0.30, 0.28, 0.35, 0.29, 0.27, 0.33]
    b = [0.25, 0.27, 0.29, 0.30, 0.22, 0.28]
    plain = paired_difference(a, b)
    corrected = paired_difference(a, b, test_train_ratio=0.25)
    diffs = np.subtract(a, b)
    sd = diffs.std(ddof=1)
    half = t.ppf(0.975, 5) * sd * math.sqrt(1 / 6 + 0.25)
    assert corrected["ci95"] == pytest.approx([diffs.mean() - half, diffs.mean() + half])
    assert corrected["correction"] == "nadeau-bengio" and plain["correction"] == "none"
    width = corrected["ci95"][1] - corrected["ci95"][0]
    assert width > plain["ci95"][1] - plain["ci95"][0]
    assert plain["distinguishable"] and not corrected["distinguishable"]


def test_sample_sd_and_no_sd_for_one_value() -> None:
    assert mean_sd([0.2, 0.4]) == pytest.approx((0.3, math.sqrt(0.02)))
    mean, sd = mean_sd([0.264])
    assert mean == 0.264 and math.isnan(sd)


def per_fold(fused: list[float], meta: list[float], image: list[float]) -> list[dict]:
    out = []
    for k, (f, m, i) in enumerate(zip(fused, meta, image, strict=True), 1):
        scores = {"kappa": f - 0.1, "quadratic_kappa": f}
        out.append(
            {
                "fold": k,
                "repeat": 1 + (k - 1) // 3,
                "n_train": 120,
                "n_val": 40,
                "kappa": f - 0.1,
                "quadratic_kappa": f + 0.05,  # all samples: not what the verdict uses
                "accuracy": 0.5,
                "macro_f1": 0.4,
                "weighted_f1": 0.4,
                "train_kappa": 0.3,
                "train_quadratic_kappa": f + 0.1,
                "f1": {"I": 0.4, "P": 0.5, "R": 0.3},
                "flags": [],
                "paired": {
                    "n": 30,
                    "fused": scores,
                    "branches": {
                        "metadata": {"kappa": m - 0.1, "quadratic_kappa": m},
                        "thermal_map": {"kappa": i - 0.1, "quadratic_kappa": i},
                    },
                },
            }
        )
    return out


def test_judgement_uses_paired_rows_and_its_intervals() -> None:
    cfg = load_config(None)
    fused = [0.30, 0.27, 0.33, 0.29, 0.31, 0.28]
    per = per_fold(fused, [0.29, 0.28, 0.31, 0.30, 0.30, 0.27], [0.1, 0.12, 0.09, 0.11, 0.1, 0.13])
    judged = judge_combination(cfg, ["metadata", "thermal_map"], per, 40 / 120)
    verdict = judged["verdict"]
    criteria = {c["name"]: c for c in verdict["criteria"]}
    assert verdict["metric"] == "quadratic_kappa"
    assert criteria["quadratic kappa > 0.20"]["value"] == pytest.approx(np.mean(fused), abs=1e-4)
    beats = criteria["beats thermal_map alone"]
    assert beats["ok"] and beats["outcome"] == "beats"
    meta = criteria["beats metadata-only"]
    assert not meta["ok"] and meta["outcome"] == "not distinguishable" and meta["folds"] == 6
    assert [r["repeat"] for r in judged["repeats"]] == [1, 2]
    paired = judged["paired"]
    assert paired is not None and paired["n"] == [30] * 6


def test_paired_scores_use_only_rows_with_every_modality() -> None:
    from dfu_tui.engine.folds import Fold
    from dfu_tui.engine.scoring import _paired_scores

    labels = np.array([0, 1, 2, 1, 0, 2, 1, 1])
    fold = Fold(1, np.array([], dtype=int), np.arange(8))
    meta = np.eye(3)[labels] * 0.8 + 0.2 / 3
    image = np.eye(3)[(labels + 1) % 3]
    image[[1, 4, 6]] = np.nan  # three samples without an image
    fused = 0.7 * meta + 0.3 * np.nan_to_num(image)
    fused[[1, 4, 6]] = meta[[1, 4, 6]]
    out = _paired_scores(
        labels, fold, ("metadata", "thermal_map"), {"metadata": meta, "thermal_map": image}, fused
    )
    assert out["n"] == 5
    assert out["branches"]["metadata"]["kappa"] == 1.0
    assert out["branches"]["thermal_map"]["kappa"] < 0
    # an image-only combination is compared with metadata alone on its own rows
    alone = _paired_scores(
        labels, fold, ("thermal_map",), {"metadata": meta, "thermal_map": image}, image
    )
    assert alone["n"] == 5 and set(alone["branches"]) == {"thermal_map", "metadata"}


def test_make_cv_repeats_and_holdout() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(1, 41), 3)
    labels = np.array([rng.integers(0, 3) for _ in groups])
    labels[:9] = [0, 1, 2] * 3
    held = temporal_holdout(groups.astype(float), groups, 0.2)
    assert set(groups[held]) == set(range(33, 41))
    folds = make_cv(labels, groups, 3, 7, repeats=2, holdout=held)
    assert [f.number for f in folds] == list(range(1, 10))
    assert [f.repeat for f in folds] == [1, 1, 1, 2, 2, 2, 0, 0, 0] and folds[6].kind == HOLDOUT
    # the case-mix folds: the held-out patients, split by patient, each scored by a model
    # trained on every other patient (earlier and later alike)
    mix = folds[7:]
    assert [f.kind for f in mix] == [CASEMIX, CASEMIX]
    assert sorted(np.concatenate([f.val for f in mix])) == sorted(np.flatnonzero(held))
    for f in mix:
        assert not set(groups[f.train]) & set(groups[f.val])
        assert sorted(np.concatenate([f.train, f.val])) == list(range(len(groups)))
    assert [f.label(3, 2) for f in folds[6:]] == ["hold-out", "case-mix 1", "case-mix 2"]
    for r in (1, 2):
        vals = np.concatenate([f.val for f in folds if f.repeat == r])
        assert sorted(vals) == sorted(np.flatnonzero(~held))  # each repeat is a partition
    assert sorted(folds[6].train) == sorted(np.flatnonzero(~held))
    again = make_cv(labels, groups, 3, 7, repeats=2, holdout=held)
    assert all((a.val == b.val).all() for a, b in zip(folds, again, strict=True))
    assert any(
        set(a.val) != set(b.val) for a, b in zip(folds[:3], folds[3:6], strict=True)
    )  # the second repeat is a different split


def test_holdout_by_an_order_column_uses_each_patients_first_value() -> None:
    groups = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    order = np.array([50, 10, 20, 21, 5, 90, 30, 31, 1, 2], dtype=float)
    held = temporal_holdout(order, groups, 0.2)
    assert set(groups[held]) == {4}  # first dates: 10, 20, 5, 30, 1


def test_fold_labels() -> None:
    assert fold_label(3, "cv", 3, 1) == "fold 3"
    assert fold_label(7, "cv", 5, 3) == "r2 fold 2"
    assert fold_label(16, HOLDOUT, 5, 3) == "hold-out"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("cv.repeats=0", "cv.repeats: must be between 1 and 100"),
        ("cv.strategy='random'", "cv.strategy: 'random' is not one of grouped, temporal"),
        ("cv.holdout_fraction=0.7", "cv.holdout_fraction: must be in (0, 0.5)"),
        ("criteria.metric='auc'", "criteria.metric: 'auc' is not one of quadratic_kappa, kappa"),
        ("criteria.confidence=1.5", "criteria.confidence: must be in [0.5, 1)"),
    ],
)
def test_bad_cv_and_criteria_keys(override: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        load_config("configs/default.toml", [override])
    assert any(message in line for line in err.value.problems)


def test_unknown_order_column_is_one_line(tiny_demo_master) -> None:
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine.folds import run_folds

    cfg = load_config(
        "configs/default.toml",
        [
            f"data.root='{tiny_demo_master}'",
            "cv.strategy='temporal'",
            "cv.order_column='Visit'",
            "cv.folds=2",
        ],
    )
    table = load_dataset(cfg.dataset, modalities=[]).table
    with pytest.raises(InputError, match="cv.order_column: no column 'Visit'"):
        run_folds(cfg, table)
    by_days = load_config(
        "configs/default.toml",
        [
            f"data.root='{tiny_demo_master}'",
            "cv.strategy='temporal'",
            "cv.order_column='Appt Days'",
            "cv.folds=2",
        ],
    )
    folds = run_folds(by_days, table)
    assert folds[2].kind == HOLDOUT and len(folds) == 5


def test_minimum_detectable_difference_by_hand() -> None:
    from scipy.stats import t

    a = [0.30, 0.28, 0.35, 0.29, 0.27]
    b = [0.25, 0.27, 0.29, 0.30, 0.22]
    d = paired_difference(a, b, 0.25, 0.95, 0.80)
    se = np.subtract(a, b).std(ddof=1) * math.sqrt(1 / 5 + 0.25)
    assert d["half_width"] == pytest.approx(t.ppf(0.975, 4) * se)
    assert d["mdd"] == pytest.approx((t.ppf(0.975, 4) + t.ppf(0.80, 4)) * se)
    # more folds, same spread: a smaller detectable difference
    more = paired_difference(a * 3, b * 3, 0.25, 0.95, 0.80)
    assert more["mdd"] < d["mdd"]


def test_selection_ranks_on_common_rows_against_one_reference() -> None:
    """The issue's case: fused at 0.554 on 425 rows beat metadata at 0.526 on 488 rows, but
    metadata scores 0.544 on those 425: ranked by the paired difference, the margin is what
    the rows do not explain."""
    from dfu_tui.engine.paired import reference_summary
    from dfu_tui.engine.summary import selection

    def combo(name: list[str], own: float, mine: list[float], ref: list[float], n: int) -> dict:
        per = [
            {
                "reference": {
                    "name": "metadata",
                    "n": n,
                    "fused": {"quadratic_kappa": m, "kappa": m},
                    "reference": {"quadratic_kappa": r, "kappa": r},
                }
            }
            for m, r in zip(mine, ref, strict=True)
        ]
        return {
            "modalities": name,
            "paired": {"fused": {"mean": own}},
            "mean": {"quadratic_kappa": own},
            "reference": reference_summary(per, "quadratic_kappa", 0.25, 0.95, 0.8),
        }

    meta = combo(["metadata"], 0.526, [0.52, 0.53], [0.52, 0.53], 244)
    fused = combo(["metadata", "thermal_map"], 0.554, [0.55, 0.558], [0.545, 0.543], 212)
    image = combo(["thermal_map"], 0.560, [0.40, 0.42], [0.545, 0.543], 212)
    chosen = selection([meta, fused, image], "quadratic_kappa")
    assert chosen["selected"] == ["metadata", "thermal_map"]  # not thermal_map at 0.560
    assert chosen["versus_reference"] == pytest.approx(0.01)
    assert chosen["reference"] == "metadata" and chosen["n"] == 424
    assert [r["modalities"] for r in chosen["ranking"]] == [
        ["metadata", "thermal_map"],
        ["metadata"],
        ["thermal_map"],
    ]
    assert "on common rows" in chosen["note"]


def test_holdout_gap_splits_into_case_mix_and_era() -> None:
    from dfu_tui.engine.summary import holdout_summary

    cfg = load_config(None, ["cv.strategy='temporal'", "criteria.metric='kappa'"])

    def metrics(confusion: list[list[int]]) -> dict:
        from dfu_tui.engine.curve import kappa_of_confusion

        k = kappa_of_confusion(np.array(confusion))
        return {
            "kappa": k,
            "quadratic_kappa": k,
            "accuracy": 0.5,
            "macro_f1": 0.5,
            "n": int(np.sum(confusion)),
            "flags": [],
            "confusion": confusion,
            "interval": [k - 0.1, k + 0.1],
        }

    hold = {"combinations": [metrics([[5, 5, 0], [5, 10, 5], [0, 5, 5]])], "branches": {}}
    mix = [
        {"combinations": [metrics([[4, 1, 0], [1, 8, 1], [0, 1, 4]])]},
        {"combinations": [metrics([[3, 2, 0], [2, 6, 2], [0, 2, 3]])]},
    ]
    combos = [{"modalities": ["metadata"], "mean": {"kappa": 0.6}}]
    row = holdout_summary(cfg, hold, combos, mix)["combinations"][0]
    from dfu_tui.engine.curve import kappa_of_confusion

    pooled = kappa_of_confusion(np.array([[7, 3, 0], [3, 14, 3], [0, 3, 7]]))
    assert row["same_patients_cv"]["kappa"] == pytest.approx(pooled)
    assert row["case_mix"] == pytest.approx(pooled - 0.6)
    assert row["era"] == pytest.approx(row["kappa"] - pooled)
    assert row["case_mix"] + row["era"] == pytest.approx(row["drift"])


def test_patient_bootstrap_keeps_visits_together() -> None:
    from dfu_tui.engine.scoring import patient_bootstrap

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 3)
    y = rng.integers(0, 3, len(groups))
    good = np.where(rng.random(len(y)) < 0.7, y, rng.integers(0, 3, len(y)))
    interval = patient_bootstrap(y, good, groups, "quadratic_kappa", 0.95, 1)
    assert interval is not None
    low, high = interval
    from dfu_tui.engine.curve import cohen_kappa

    point = cohen_kappa(y, good, quadratic=True)
    assert low < point < high and 0.05 < high - low < 0.8
    assert patient_bootstrap(y, good, groups, "kappa", 0.95, 1) == patient_bootstrap(
        y, good, groups, "kappa", 0.95, 1
    )  # seeded
    assert patient_bootstrap(y[:3], good[:3], groups[:3], "kappa", 0.95, 1) is None


def test_t_quantiles_match_scipy_without_importing_it() -> None:
    """The verdict's t quantiles come from `engine/tdist.py` (SciPy's import froze the
    dashboard's thread for seconds): equal to `scipy.stats.t.ppf` to 1e-10 relative."""
    from scipy.stats import t

    from dfu_tui.engine.tdist import t_cdf, t_quantile

    for df in (1, 2, 3, 4, 5, 9, 10, 19, 49, 99, 299):
        for p in (0.025, 0.2, 0.6, 0.8, 0.9, 0.95, 0.975, 0.99, 0.9995):
            want = float(t.ppf(p, df))
            assert t_quantile(p, df) == pytest.approx(want, rel=1e-10), (df, p)
            assert t_cdf(want, df) == pytest.approx(p, rel=1e-10)
    assert math.isnan(t_quantile(1.0, 5)) and t_quantile(0.5, 5) == 0.0


def test_judging_a_run_in_the_dashboard_imports_no_scipy() -> None:
    """The monitor's and compare's verdicts, judged in a fresh process the way the dashboard
    judges them: SciPy never loads."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dfu_tui.config import load_config\n"
        "from dfu_tui.runs.state import load_state, verdict_so_far\n"
        "run = Path('tests/fixtures/runs/20261128-133945-3b5598')\n"
        "v = verdict_so_far(load_config(run / 'config.toml'), load_state(run), 0)\n"
        "assert v is not None and v['criteria'], v\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'scipy'], 'scipy loaded'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
