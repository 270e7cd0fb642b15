"""The caveats a verdict carries: which features, how much they carry, power, hold-out."""

from __future__ import annotations

from typing import Any

from dfu_tui.config import load_config
from dfu_tui.engine.caveats import feature_caveats, holdout_caveat, power_caveat, run_caveats


def fold(number: int, flags: list[tuple[str, str]], comparison: list[float] | None = None) -> Any:
    """A fold result with radar flags (rule, detail) and, optionally, a treatment comparison
    of metadata alone (with, without) on both scales."""
    features = ["Offloading: Scotcast Boot or RCW", "Offloading", "Dressing Grouped", "DFU#"]
    out: dict[str, Any] = {
        "fold": number,
        "n_train": 100,
        "n_val": 30,
        "radar": {
            "features": [{"feature": f} for f in features],
            "flags": [{"rule": r, "level": "warning", "detail": d} for r, d in flags],
        },
    }
    if comparison is not None:
        with_, without = comparison
        scores = {"kappa": with_, "quadratic_kappa": with_}
        out["feature_comparison"] = {
            "group": "treatment",
            "n": 30,
            "rows": [
                {
                    "modalities": ["metadata"],
                    "with": scores,
                    "without": {"kappa": without, "quadratic_kappa": without},
                }
            ],
        }
    return out


TREAT = ("treatment_feature", "Dressing Grouped: decided after assessment; importance rank 1")
DOM = ("dominant_feature", "Dressing Grouped: permutation importance 0.2")
COLON = ("treatment_feature", "Offloading: Scotcast Boot or RCW: decided after assessment")
IDENTITY = ("dominant_feature", "DFU#: single-feature unweighted kappa 0.3")


def test_one_caveat_per_column_with_the_measured_difference() -> None:
    cfg = load_config(None, ["features.compare='treatment'"])
    folds = [
        fold(1, [TREAT, DOM, COLON], [0.40, 0.30]),
        fold(2, [TREAT], [0.42, 0.31]),
        fold(3, [IDENTITY], [0.38, 0.30]),
        fold(4, [IDENTITY], [0.38, 0.30]),
    ]
    caveats = {c["feature"]: c for c in feature_caveats(cfg, ["metadata"], folds)}
    # a column with a colon in its name is read whole, not cut at its first colon
    assert set(caveats) == {"Dressing Grouped", "Offloading: Scotcast Boot or RCW", "DFU#"}
    dressing = caveats["Dressing Grouped"]
    assert dressing["rules"] == ["dominant_feature", "treatment_feature"]
    assert dressing["folds"] == 2 and "in 2 of 4 folds" in dressing["text"]
    assert abs(dressing["difference"]["mean"] - (0.10 + 0.11 + 0.08 + 0.08) / 4) < 1e-9
    assert "carried by treatment" in dressing["text"] and "QWK" in dressing["text"]
    assert caveats["Offloading: Scotcast Boot or RCW"]["group"] == "treatment"
    # a column in the identity group: no comparison of that group in this run, offered
    assert "--compare-features identity" in caveats["DFU#"]["text"]
    # a dominant (not treatment) column in one fold of many is the radar's business only
    once = feature_caveats(cfg, ["metadata"], [*folds[:3], fold(4, [])])
    assert "DFU#" not in {c["feature"] for c in once}
    # image alone: the metadata radar is not its caveat
    assert feature_caveats(cfg, ["thermal_map"], folds) == []


def test_without_the_comparison_the_caveat_offers_it() -> None:
    cfg = load_config(None)
    (caveat,) = feature_caveats(cfg, ["metadata", "thermal_map"], [fold(1, [TREAT])])
    assert "difference" not in caveat
    assert "not measured: run with --compare-features treatment" in caveat["text"]


def test_power_and_holdout_caveats() -> None:
    cfg = load_config(None, ["cv.folds=3"])
    weak = {"paired": True, "mdd": 0.21, "versus": "metadata", "power": 0.8}
    v = {"design": {"folds": 3, "exploratory": True}, "criteria": [weak]}
    caveat = power_caveat(cfg, v)
    assert caveat is not None
    assert "3 folds in all, fewer than 10" in caveat["text"]
    assert "cv.repeats = 4 gives 12 folds" in caveat["text"]
    assert "0.210 vs metadata QWK" in caveat["text"]
    strong = {"design": {"folds": 15, "exploratory": False}, "criteria": [{**weak, "mdd": 0.04}]}
    assert power_caveat(cfg, strong) is None
    assert [c["kind"] for c in run_caveats(cfg, ["metadata"], [], v)] == ["power"]
    low = {"quadratic_kappa": 0.166, "interval": [-0.05, 0.37], "n": 87}
    caveat = holdout_caveat(cfg, low)
    assert caveat is not None and "not confirmed on later patients" in caveat["text"]
    assert "-0.050 to 0.370" in caveat["text"] and "n=87" in caveat["text"]
    assert caveat["kind"] == "holdout" and not caveat["confirmed"]
    # above the minimum but its interval reaches it: not conclusive, still confirmed
    unsure = holdout_caveat(cfg, {**low, "quadratic_kappa": 0.3, "cv_mean": 0.35})
    assert unsure is not None and unsure["kind"] == "holdout_uncertain" and unsure["confirmed"]
    # the whole interval below the CV mean: the later patients disagree, with the split
    split = {"drift": -0.384, "case_mix": -0.281, "era": -0.103}
    disagree = {
        "quadratic_kappa": 0.30,
        "interval": [0.22, 0.375],
        "n": 103,
        "cv_mean": 0.603,
        "same_patients_cv": {"quadratic_kappa": 0.322},
        **split,
    }
    caveat = holdout_caveat(cfg, disagree)
    assert caveat is not None and caveat["kind"] == "holdout_disagrees"
    assert "case mix -0.281" in caveat["text"] and "era -0.103" in caveat["text"]
    agree = {**disagree, "interval": [0.25, 0.70]}
    assert holdout_caveat(cfg, agree) is None
