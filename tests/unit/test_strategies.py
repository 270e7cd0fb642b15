"""Every fusion of `fusion.compare` on the same branch predictions: the same numbers as a run
of that strategy alone, its own flags (the seed's learned-alpha collapse where it happens),
and paired differences from the configured fusion that recompute by hand."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
import pytest
from scipy.stats import t

from dfu_tui.config import FUSION_STRATEGIES, load_config
from dfu_tui.engine.folds import Fold
from dfu_tui.engine.plan import needs_oof
from dfu_tui.engine.scoring import evaluate_fold, fold_flags
from dfu_tui.engine.summary import summarize

# every registered strategy (a new one is covered by each test below) and a weight table
ALL = f"fusion.compare={list(FUSION_STRATEGIES)!r}"[:-1] + ",{metadata=0.5,image=0.5}]"


def cfg_of(*sets: str):
    return load_config(None, ["modalities.use=['metadata','thermal_map']", *sets])


def planted(seed: int, n: int = 240, overconfident: bool = True):
    """Labels and branch predictions of one fold: a metadata branch that is right about 60 %
    of the time, and an image branch that is perfect and over-confident on its training rows
    but says P for every validation row (the research note's over-fitted CNN)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.31, 0.56, 0.13])
    order = rng.permutation(n)
    fold = Fold(1, np.sort(order[: n * 2 // 3]), np.sort(order[n * 2 // 3 :]))

    def noisy(rows: np.ndarray, right: float) -> np.ndarray:
        p = rng.dirichlet([2, 2, 2], size=len(rows))
        hit = rng.random(len(rows)) < right
        p[hit, y[rows][hit]] += 1.5
        return p / p.sum(axis=1, keepdims=True)

    meta = {
        "val_proba": noisy(fold.val, 0.6),
        "train_proba": noisy(fold.train, 0.9),
        "oof_proba": noisy(fold.train, 0.6),
    }
    image_train = np.full((len(fold.train), 3), 0.01)
    image_train[np.arange(len(fold.train)), y[fold.train]] = 0.98
    image_val = np.tile([0.01, 0.98, 0.01], (len(fold.val), 1))
    if not overconfident:
        image_val = noisy(fold.val, 0.5)
    image = {
        "val_proba": image_val,
        "train_proba": image_train,
        "oof_proba": noisy(fold.train, 0.4),
    }
    return y, fold, {"metadata": meta, "thermal_map": image}


def with_fold_number(fold: Fold, number: int) -> Fold:
    return Fold(number, fold.train, fold.val)


class TestEveryStrategyInOneRun:
    def test_each_fusion_equals_a_run_of_it_alone(self) -> None:
        y, fold, preds = planted(1, overconfident=False)
        cfg = cfg_of(ALL)
        assert needs_oof(cfg) and not needs_oof(cfg_of())
        (combo,) = evaluate_fold(cfg, y, fold, preds)["combinations"]
        rows = combo["strategies"]
        assert [r["name"] for r in rows] == [*FUSION_STRATEGIES, "fixed 0.50/0.50"]
        alone = {name: cfg_of(f"fusion.strategy={name}") for name in FUSION_STRATEGIES}
        alone["fixed 0.50/0.50"] = cfg_of("fusion.weights={metadata=0.5,image=0.5}")
        for row in rows:
            (single,) = evaluate_fold(alone[row["name"]], y, fold, preds)["combinations"]
            assert "strategies" not in single
            for key in ("kappa", "quadratic_kappa", "confusion", "predicted_share", "flags"):
                assert row[key] == single[key], (row["name"], key)
            assert row["weights"] == single["fusion"]["weights"], row["name"]
        # the reference row is the combination's own scores
        assert rows[0]["kappa"] == combo["kappa"] and rows[0]["paired"]["n"] == len(fold.val)

    def test_learned_alpha_collapses_where_fixed_does_not(self) -> None:
        y, fold, preds = planted(2)
        result = evaluate_fold(cfg_of(ALL), y, fold, preds)
        rows = {r["name"]: r for r in result["combinations"][0]["strategies"]}
        alpha = rows["learned_alpha"]
        assert alpha["mean_alpha"] < 0.2  # it trusted the image branch
        assert alpha["predicted_share"]["P"] > 0.9
        assert any(f["level"] == "collapse" for f in alpha["flags"])
        assert not any(f["level"] == "collapse" for f in rows["fixed"]["flags"])
        # the other fusions' flags are logged with their name; the configured one's without
        named = [f for f in fold_flags(result) if f.get("strategy")]
        assert {f["strategy"] for f in named} >= {"learned_alpha"}
        assert all(f["strategy"] != "fixed" for f in named)

    def test_paired_differences_recompute_by_hand(self) -> None:
        cfg = cfg_of(ALL)
        folds = []
        for k in range(1, 5):
            y, fold, preds = planted(10 + k, overconfident=k % 2 == 0)
            fold = with_fold_number(fold, k)
            folds.append(evaluate_fold(cfg, y, fold, preds))
        summary = summarize(cfg, "r", folds, "completed")
        (combo,) = summary["combinations"]
        table = combo["strategies"]
        assert table["reference"] == "fixed" and table["metric"] == "quadratic_kappa"
        alpha = next(r for r in table["rows"] if r["name"] == "learned_alpha")
        diffs = [
            f["combinations"][0]["strategies"][1]["paired"]["strategy"]["quadratic_kappa"]
            - f["combinations"][0]["strategies"][1]["paired"]["reference"]["quadratic_kappa"]
            for f in folds
        ]
        mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
        ratio = statistics.fmean(f["n_val"] / f["n_train"] for f in folds)
        half = t.ppf(0.975, 3) * sd * math.sqrt(1 / 4 + ratio)
        versus = alpha["versus_reference"]
        assert versus["mean_difference"] == pytest.approx(mean, abs=1e-12)
        assert versus["ci95"] == pytest.approx([mean - half, mean + half], abs=1e-12)
        assert versus["n"] == [f["n_val"] for f in folds]
        assert "versus_reference" not in table["rows"][0]
        assert alpha["n"] == sum(f["n_val"] for f in folds)
        # the gap is on the criteria's scale
        assert alpha["gap"] == pytest.approx(
            alpha["mean"]["train_quadratic_kappa"] - alpha["mean"]["quadratic_kappa"]
        )
        assert len(alpha["flags"]) >= 2  # two planted folds collapse
        # each branch alone follows, paired with the reference on the verdict's rows: the
        # verdict's "beats metadata-only" difference with its sign turned
        names = [r["name"] for r in table["rows"]]
        assert names[-2:] == ["metadata alone", "thermal_map alone"]
        meta = table["rows"][-2]["versus_reference"]
        paired: Any = combo["paired"]
        verdict_diff = paired["versus"]["metadata"]
        assert meta["mean_difference"] == pytest.approx(-verdict_diff["mean_difference"])
        assert meta["n"] == paired["n"]
        assert table["rows"][-2]["n"] == sum(f["branches"]["metadata"]["n"] for f in folds)

    def test_single_modality_combinations_have_nothing_to_compare(self) -> None:
        y, fold, preds = planted(3)
        cfg = cfg_of(ALL, "modalities.search=true")
        combos = evaluate_fold(cfg, y, fold, preds)["combinations"]
        assert [("strategies" in c) for c in combos] == [False, False, True]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("['fixd']", "fusion.compare[0]: 'fixd' is not one of fixed, learned_alpha"),
        ("[{metadata=0.5,image=0.6}]", "fusion.compare[0]: must sum to 1, got 1.1"),
        ("[{metadata=1.0}]", "fusion.compare[0]: no weight for 'thermal_map'"),
        ("[{metadata=nan,image=0.5}]", "must be a finite number, got nan"),
        ("3", "fusion.compare: expected a list of strings or tables of numbers, got integer 3"),
        ("['fixed', 2]", "fusion.compare: expected a list of strings or tables of numbers"),
        (str(["tuned"] * 21), "fusion.compare: at most 20 fusions, got 21"),
    ],
)
def test_bad_compare_is_named(value: str, message: str) -> None:
    from dfu_tui.errors import InputError

    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cfg_of(f"fusion.compare={value}")


def test_compare_names_each_fusion_once() -> None:
    cfg = cfg_of("fusion.strategy=tuned", "fusion.compare=['tuned','fixed','fixed']")
    assert [v.name for v in cfg.fusion_variants()] == ["tuned", "fixed"]


def test_every_shipped_config_loads_and_strategies_compares_six() -> None:
    from dfu_tui.cli import SHIPPED_CONFIGS

    configs = {p.name: load_config(p) for p in sorted(SHIPPED_CONFIGS.glob("*.toml"))}
    assert {"default.toml", "quick.toml", "paper.toml", "strategies.toml"} <= set(configs)
    names = [v.name for v in configs["strategies.toml"].fusion_variants()]
    assert names == ["fixed", "learned_alpha", "tuned", "stacked", "geometric", "fixed 0.50/0.50"]


def test_the_research_notes_failure_on_the_demo(small_demo_master) -> None:
    """The whole chain on the demo: the real forest of one fold, beside a planted image branch
    that is perfect and over-confident on its training rows and leans to P, uninformative, on
    every validation row (an over-fitted CNN). Learned alpha, fitted on those in-sample
    predictions, leans on the image branch and collapses to P; fixed 0.70 / 0.30 does not.
    The forest's training kappa is the patient-grouped inner out-of-fold one, not
    out-of-bag."""
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine.folds import run_folds
    from dfu_tui.engine.metrics import kappa
    from dfu_tui.engine.training import train_task

    cfg = load_config(
        None,
        [
            f"data.root='{small_demo_master}'",
            "modalities.use=['metadata','thermal_map']",
            "metadata_model.n_estimators=40",
            "cv.folds=3",
            "radar.enabled=false",
        ],
    )
    dataset = load_dataset(cfg.dataset, modalities=[])
    y = dataset.table.labels
    fold = run_folds(cfg, dataset.table)[0]
    meta = train_task(cfg, dataset, fold, "metadata", threads=1).arrays()
    image_train = np.full((len(fold.train), 3), 0.01)
    image_train[np.arange(len(fold.train)), y[fold.train]] = 0.98
    image = {
        "val_proba": np.tile([0.2, 0.6, 0.2], (len(fold.val), 1)),
        "train_proba": image_train,
        "oof_proba": np.zeros((0, 3)),
    }
    preds = {"metadata": meta, "thermal_map": image}
    learned = evaluate_fold(cfg_of("fusion.strategy=learned_alpha"), y, fold, preds)
    fixed = evaluate_fold(cfg, y, fold, preds)
    (alpha,) = learned["combinations"]
    assert alpha["mean_alpha"] < 0.5  # towards the over-confident image branch
    assert alpha["predicted_share"]["P"] > 0.9
    collapse = [f for f in fold_flags(learned) if f["level"] == "collapse"]
    assert collapse and all(f["combination"] == ["metadata", "thermal_map"] for f in collapse)
    assert not [f for f in fold_flags(fixed) if f["level"] == "collapse"]
    # the forest's training kappa: patient-grouped inner out-of-fold, and it says so
    branch = fixed["branches"]["metadata"]
    grouped = kappa(y[fold.train], meta["oof_proba"].argmax(axis=1))
    assert branch["train_kappa"] == pytest.approx(grouped)
    assert branch["train_kappa"] != pytest.approx(
        kappa(y[fold.train], meta["train_proba"].argmax(axis=1))
    )  # not the out-of-bag one
    assert "patient-grouped" in branch["train_rows"]
    assert "in-sample" in fixed["branches"]["thermal_map"]["train_rows"]


@pytest.mark.parametrize("strategy", list(FUSION_STRATEGIES))
def test_a_fitted_fusion_saves_as_json_and_loads_to_the_same_probabilities(
    strategy: str,
) -> None:
    """A final model's `fusion.json`: what every registered strategy learned, as JSON, and
    loaded back (no pickle) it fuses new rows as the fitted estimator does, rows without an
    image included; parameters that do not fit the strategy are refused, saying why."""
    import json

    from dfu_tui.engine.fusion import fusion_from_params, make_fusion

    rng = np.random.default_rng(7)
    n = 300
    y = rng.choice(3, size=n, p=[0.3, 0.55, 0.15])
    probs = {
        "metadata": rng.dirichlet([1, 1, 1], size=n) * 0.5 + np.eye(3)[y] * 0.5,
        "thermal_map": rng.dirichlet([1, 1, 1], size=n),
    }
    probs["thermal_map"][:20] = np.nan  # visits without a thermal image
    fitted = make_fusion(strategy, {"metadata": 0.7, "thermal_map": 0.3}, seed=3).fit(probs, y)
    saved = json.loads(json.dumps(fitted.params()))
    loaded = fusion_from_params(strategy, saved, ["metadata", "thermal_map"])
    new = {
        "metadata": rng.dirichlet([1, 1, 1], size=50),
        "thermal_map": rng.dirichlet([1, 1, 1], size=50),
    }
    new["thermal_map"][:5] = np.nan
    np.testing.assert_allclose(loaded.predict_proba(new), fitted.predict_proba(new), atol=1e-12)
    bad: list[Any] = [{}, {"weights": {"metadata": -1, "thermal_map": 2}}, {"coef": "x"}, []]
    for params in bad:
        with pytest.raises(ValueError):
            fusion_from_params(strategy, params, ["metadata", "thermal_map"])
