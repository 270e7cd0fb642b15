"""The engine's science without TensorFlow: folds, metadata branch, fusion, metrics, rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfu_tui.config import CollapseConfig, CriteriaConfig, MetadataModelConfig
from dfu_tui.data.metadata import read_metadata
from dfu_tui.engine.folds import inner_split, make_folds
from dfu_tui.engine.fusion import fuse, tune_weights, weighted_average
from dfu_tui.engine.metadata_branch import train_metadata_branch
from dfu_tui.engine.metrics import fold_metrics, kappa, quadratic_kappa
from dfu_tui.engine.rules import (
    check_predictions,
    criterion_mark,
    criterion_value,
    design_text,
    tier_word,
    verdict,
    verdict_headline,
)
from dfu_tui.errors import InputError

META = "DataMaster_Processed_V12_WithMissing.csv"


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):
    from dfu_tui.data.demo import write_demo

    root = write_demo(tmp_path_factory.mktemp("d") / "demo", patients=60, seed=1, images=False).root
    return read_metadata(root / META, "Healing Phase Abs", "Patient#")


@pytest.mark.xdist_group("folds-table")  # one worker: the demo table is written once
class TestFolds:
    def test_disjoint_by_patient_and_stratified(self, table) -> None:
        folds = make_folds(table.labels, table.patients, 3, seed=7)
        seen: set[int] = set()
        for fold in folds:
            train_p, val_p = set(table.patients[fold.train]), set(table.patients[fold.val])
            assert not train_p & val_p
            assert not val_p & seen
            seen |= val_p
            assert set(table.labels[fold.val]) == {0, 1, 2}
            assert len(fold.train) + len(fold.val) == len(table.labels)
        assert seen == set(table.patients)

    def test_seeded(self, table) -> None:
        a = make_folds(table.labels, table.patients, 3, seed=7)
        b = make_folds(table.labels, table.patients, 3, seed=7)
        assert all(np.array_equal(x.val, y.val) for x, y in zip(a, b, strict=True))

    def test_too_few_patients_named(self) -> None:
        labels = np.array([0, 0, 1, 1, 2, 2])
        groups = np.array([1, 2, 3, 4, 5, 5])
        with pytest.raises(InputError, match="class R has 1 patient"):
            make_folds(labels, groups, 2, seed=0)

    def test_inner_split_is_patient_grouped(self, table) -> None:
        tr, va = inner_split(table.labels, table.patients, 0.2, seed=3)
        assert not set(table.patients[tr]) & set(table.patients[va])
        assert 0.1 < len(va) / len(table.labels) < 0.35


def fit_fold(table, fold_index: int = 0, trees: int = 10, seed: int = 0, inner: int = 0):
    """Train the metadata branch on one fold of the module's table."""
    fold = make_folds(table.labels, table.patients, 3, seed=7)[fold_index]
    out = train_metadata_branch(
        table.frame[table.feature_columns],
        table.labels,
        table.patients,
        fold.train,
        fold.val,
        MetadataModelConfig(n_estimators=trees, n_jobs=1),
        seed=seed,
        inner=inner,
    )
    return fold, out


@pytest.mark.xdist_group("folds-table")
class TestMetadataBranch:
    def test_fit_on_training_rows_only(self, table) -> None:
        fold = make_folds(table.labels, table.patients, 3, seed=7)[0]
        frame = table.frame[table.feature_columns]
        out = train_metadata_branch(
            frame,
            table.labels,
            table.patients,
            fold.train,
            fold.val,
            MetadataModelConfig(n_estimators=20, n_jobs=1),
            seed=0,
        )
        model = out.info["model"]
        imputer = model.named_steps["columns"].named_transformers_["numeric"]
        numeric = [c for c in frame.columns if frame[c].dtype != object]
        expected = frame.iloc[fold.train][numeric].median().to_numpy()
        whole = frame[numeric].median().to_numpy()
        assert np.allclose(imputer.statistics_, expected, equal_nan=True)
        assert not np.allclose(imputer.statistics_, whole, equal_nan=True)
        assert out.val_proba.shape == (len(fold.val), 3)
        assert np.allclose(out.val_proba.sum(axis=1), 1)

    def test_label_columns_never_in_feature_matrix(self, table) -> None:
        _, out = fit_fold(table)
        names = set(out.info["model"].named_steps["columns"].get_feature_names_out())
        for forbidden in (
            "Healing Phase",
            "Healing Phase Abs",
            "Phase Confidence (%)",
            "ID",
            "Patient#",
        ):
            assert not any(n == forbidden or n.startswith(forbidden + "_") for n in names)

    def test_out_of_fold_probabilities_cover_training_rows(self, table) -> None:
        fold, out = fit_fold(table, inner=3)
        assert out.oof_proba is not None and out.oof_proba.shape == (len(fold.train), 3)
        assert not np.isnan(out.oof_proba).any()

    def test_same_seed_same_probabilities(self, table) -> None:
        _, a = fit_fold(table, fold_index=1, trees=15, seed=4)
        _, b = fit_fold(table, fold_index=1, trees=15, seed=4)
        assert np.array_equal(a.val_proba, b.val_proba)


class TestMetrics:
    def test_both_kappas_labelled_and_distinct(self) -> None:
        y = np.array([0, 0, 1, 1, 2, 2, 1, 1])
        pred = np.array([0, 2, 1, 1, 2, 0, 1, 0])
        m = fold_metrics(y, np.eye(3)[pred], y, np.eye(3)[y])
        assert m["kappa"] == pytest.approx(kappa(y, pred))
        assert m["quadratic_kappa"] == pytest.approx(quadratic_kappa(y, pred))
        assert m["kappa"] != pytest.approx(m["quadratic_kappa"])
        assert m["train_kappa"] == 1.0
        assert m["confusion"][0] == [1, 0, 1]
        assert m["predicted_share"] == {"I": 0.375, "P": 0.375, "R": 0.25}


class TestRules:
    cfg = CollapseConfig()
    y = np.array([0] * 30 + [1] * 55 + [2] * 15)

    def rules(self, pred: np.ndarray, **kw) -> set[tuple[str, str]]:
        return {(f.rule, f.level) for f in check_predictions(self.y, pred, self.cfg, **kw)}

    def test_healthy_is_quiet(self) -> None:
        pred = self.y.copy()
        pred[::7] = (pred[::7] + 1) % 3
        assert self.rules(pred, kappa=0.7, train_kappa=0.75, mean_alpha=0.6) == set()

    def test_missing_class(self) -> None:
        pred = np.where(self.y == 2, 1, self.y)
        assert ("missing_class", "collapse") in self.rules(pred)

    def test_chance_kappa_and_gap(self) -> None:
        fired = self.rules(self.y, kappa=0.01, train_kappa=0.96)
        assert {("chance_kappa", "warning"), ("overfit_gap", "warning")} <= fired

    def test_alpha_pinned(self) -> None:
        # a fusion warning: whether classes collapsed is the share rules' to say
        assert ("alpha_pinned", "warning") in self.rules(self.y, mean_alpha=0.01)
        assert ("alpha_pinned", "warning") in self.rules(self.y, mean_alpha=0.99)

    def test_nan_loss(self) -> None:
        from dfu_tui.engine.rules import nan_loss

        assert [f.rule for f in nan_loss(float("nan"))] == ["nan_loss"]
        assert nan_loss(0.7) == []

    def test_verdict_tiers(self) -> None:
        from dfu_tui.engine.paired import outcome, paired_difference

        def diff(a: list[float], b: list[float], branch: str) -> dict:
            d = paired_difference(a, b, 0.25)
            return {"branch": branch, **d, "outcome": outcome(d)}

        fused = [0.25, 0.21, 0.24, 0.22]
        beaten = diff(fused, [0.10, 0.12, 0.15, 0.11], "thermal_map")
        close = diff(fused, [0.26, 0.20, 0.23, 0.24], "metadata")
        versus = {"images": {"thermal_map": beaten}, "metadata": close}
        mean = {"quadratic_kappa": 0.23, "train_quadratic_kappa": 0.30, "kappa": 0.10}
        combo = ["metadata", "thermal_map"]
        v = verdict(mean, [], CriteriaConfig(), combo, versus, True, 4)
        assert v["metric"] == "quadratic_kappa"
        assert (v["minimum"], v["expected"], v["ideal"]) == (True, True, False)
        failing = [c for c in v["criteria"] if not c["ok"]]
        assert [c["name"] for c in failing] == ["quadratic kappa >= 0.25", "beats metadata-only"]
        assert failing[1]["outcome"] == "not distinguishable"
        assert "not distinguishable" in criterion_value(failing[1])
        beats = next(c for c in v["criteria"] if c["name"] == "beats thermal_map alone")
        assert "4 folds paired: beats" in criterion_value(beats)
        assert beats["mdd"] > beats["half_width"] > 0  # the power of the design, said
        assert "detects >= " in criterion_value(beats)
        assert v["design"] == {
            "folds": 4,
            "min_folds": 10,
            "exploratory": True,
            "min_difference": 0.05,
        }
        assert design_text(v) == "exploratory (4 folds < 10)"
        unweighted = verdict(mean, [], CriteriaConfig(metric="kappa"), combo, {}, True, 12)
        assert not unweighted["minimum"]  # 0.10 on the unweighted scale
        assert unweighted["criteria"][0]["name"] == "unweighted kappa > 0.20"
        assert not unweighted["design"]["exploratory"]
        finding = [{"fold": 1, "rules": ["absolute_cap", "missing_class"]}]
        collapsed = verdict(mean, finding, CriteriaConfig(), combo, versus, True, 4)
        assert not collapsed["minimum"] and not collapsed["ideal"]
        assert criterion_value(collapsed["criteria"][1]) == "1 of 4 folds"

    def test_every_combination_faces_the_same_tests(self) -> None:
        from dfu_tui.engine.paired import outcome, paired_difference

        worse = paired_difference([0.30, 0.35, 0.32, 0.37], [0.50, 0.52, 0.49, 0.55], 0.25)
        worse = {"branch": "metadata", **worse, "outcome": outcome(worse)}
        mean = {"quadratic_kappa": 0.371, "train_quadratic_kappa": 0.40, "kappa": 0.2}
        image_alone = verdict(
            mean, [], CriteriaConfig(), ["thermal_map"], {"metadata": worse}, True, 12
        )
        assert image_alone["ideal"] is False  # it never beat metadata: no "ideal yes"
        ideal = [c for c in image_alone["criteria"] if c["tier"] == "ideal"]
        assert ideal[-1]["name"] == "beats metadata-only" and ideal[-1]["outcome"] == "worse"
        meta = verdict(mean, [], CriteriaConfig(), ["metadata"], {}, True, 12)
        assert meta["ideal"] is None and tier_word(meta, "ideal") == "n/a"
        assert criterion_mark(meta["criteria"][-1]) == "n/a"
        assert "not applicable" in criterion_value(meta["criteria"][-1])
        assert verdict_headline(meta) == "minimum yes, expected yes, ideal n/a; 12 folds"
        unmeasured = verdict(mean, [], CriteriaConfig(), ["thermal_map"], {}, False, 12)
        assert unmeasured["ideal"] is False
        assert "no metadata branch" in criterion_value(unmeasured["criteria"][-1])


class TestFusion:
    def test_fixed_renormalises_for_missing_modality(self) -> None:
        meta = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
        img = np.array([[0.0, 1.0, 0.0], [np.nan, np.nan, np.nan]])
        fused = weighted_average(
            {"metadata": meta, "thermal_map": img}, {"metadata": 0.7, "thermal_map": 0.3}
        )
        assert np.allclose(fused[0], 0.7 * meta[0] + 0.3 * img[0])
        assert np.allclose(fused[1], meta[1])  # no image: metadata alone, weight renormalised

    def test_tuned_never_looks_at_validation(self) -> None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, 60)
        good = np.eye(3)[y] * 0.6 + 0.4 / 3
        noise = rng.dirichlet(np.ones(3), 60)
        oof = {"metadata": noise, "thermal_map": good}
        weights = tune_weights(oof, y, {"metadata": 0.7, "thermal_map": 0.3})
        assert weights["thermal_map"] > weights["metadata"]
        train = {"metadata": noise, "thermal_map": good}
        a = fuse(
            "tuned",
            ("metadata", "thermal_map"),
            {"metadata": 0.7, "thermal_map": 0.3},
            {"metadata": noise[:10], "thermal_map": good[:10]},
            train,
            y,
            oof,
        )
        b = fuse(
            "tuned",
            ("metadata", "thermal_map"),
            {"metadata": 0.7, "thermal_map": 0.3},
            {"metadata": good[:10], "thermal_map": noise[:10]},
            train,
            y,
            oof,
        )
        assert a.weights == b.weights  # chosen from the out-of-fold rows only

    def test_stacked_and_learned_alpha(self) -> None:
        rng = np.random.default_rng(1)
        y = rng.integers(0, 3, 90)
        meta = np.eye(3)[y] * 0.4 + rng.dirichlet(np.ones(3), 90) * 0.6
        # An over-confident, over-fitted image branch: perfect on training rows.
        img = np.eye(3)[y] * 0.98 + 0.02 / 3
        probs = {"metadata": meta, "thermal_map": img}
        stacked = fuse("stacked", tuple(probs), {}, probs, probs, y, probs)
        assert stacked.val.shape == (90, 3) and np.allclose(stacked.val.sum(axis=1), 1)
        alpha = fuse("learned_alpha", tuple(probs), {}, probs, probs, y)
        assert alpha.mean_alpha is not None and alpha.mean_alpha < 0.2  # trusts the image branch


@pytest.mark.slow
def test_metadata_only_run_on_a_bare_csv(tmp_path: Path, small_demo_master: Path) -> None:
    """The metadata branch needs nothing but the CSV (no image folders)."""
    from dfu_tui.cli import main

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / META).write_bytes((small_demo_master / META).read_bytes())
    rc = main(
        [
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--jobs",
            "1",
            "--set",
            f"data.root='{bare}'",
            "--set",
            "modalities.use=['metadata']",
            "--set",
            "metadata_model.n_estimators=30",
            "--set",
            "cv.folds=2",
            "--set",
            "radar.enabled=false",
        ]
    )
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "summary.json").is_file() and (run / "results.csv").is_file()


class TestCurve:
    def test_numpy_kappa_matches_scikit_learn(self) -> None:
        from dfu_tui.engine.curve import cohen_kappa

        rng = np.random.default_rng(3)
        for _ in range(20):
            y, pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
            assert cohen_kappa(y, pred) == pytest.approx(kappa(y, pred))
            assert cohen_kappa(y, pred, quadratic=True) == pytest.approx(quadratic_kappa(y, pred))

    def test_weight_curve_ends_are_the_branches_alone(self) -> None:
        from dfu_tui.engine.curve import cohen_kappa, weight_curves

        rng = np.random.default_rng(4)
        y = rng.integers(0, 3, 60)
        meta = rng.dirichlet(np.ones(3), 60)
        img = rng.dirichlet(np.ones(3), 60)
        grid, curves = weight_curves(
            [({"metadata": meta, "thermal_map": img}, y)], {"thermal_map": 1.0}
        )
        curve = curves[0]
        assert len(grid) == 101 and grid[0] == 0.0 and grid[-1] == 1.0
        assert curve[-1] == pytest.approx(cohen_kappa(y, meta.argmax(axis=1)))
        assert curve[0] == pytest.approx(cohen_kappa(y, img.argmax(axis=1)))


def test_tuned_grid_is_coarse_on_small_inner_data() -> None:
    from dfu_tui.engine.fusion import FINE_GRID_SAMPLES, tuning_step

    assert tuning_step(FINE_GRID_SAMPLES - 1) == 0.25
    assert tuning_step(FINE_GRID_SAMPLES) == 0.1
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 80)
    oof = {"metadata": rng.dirichlet(np.ones(3), 80), "thermal_map": rng.dirichlet(np.ones(3), 80)}
    result = fuse(
        "tuned",
        ("metadata", "thermal_map"),
        {"metadata": 0.7, "thermal_map": 0.3},
        oof,
        oof,
        y,
        oof,
    )
    assert result.grid_step == 0.25
    assert all(round(w / 0.25, 6).is_integer() for w in result.weights.values())


def test_fusion_strategies_are_estimators() -> None:
    """Each registered strategy: settings in __init__, fit on training rows, predict_proba on
    any rows; what it learned only changes with what it was fitted on."""
    from dfu_tui.config import FUSIONS
    from dfu_tui.engine.fusion import ESTIMATORS, make_fusion

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 120)
    fit_rows = {
        "metadata": np.eye(3)[y] * 0.5 + rng.dirichlet(np.ones(3), 120) * 0.5,
        "thermal_map": rng.dirichlet(np.ones(3), 120),
    }
    other = {m: rng.dirichlet(np.ones(3), 30) for m in fit_rows}
    other["thermal_map"][:5] = np.nan  # samples without an image
    assert set(ESTIMATORS) == set(FUSIONS)  # every spec has an estimator, and back
    for strategy in FUSIONS:
        model = make_fusion(strategy, {"metadata": 0.7, "thermal_map": 0.3}, seed=0)
        fused = model.fit(fit_rows, y).predict_proba(other)
        assert fused.shape == (30, 3) and np.allclose(fused.sum(axis=1), 1), strategy
        again = make_fusion(strategy, {"metadata": 0.7, "thermal_map": 0.3}, seed=0)
        assert np.allclose(again.fit(fit_rows, y).predict_proba(other), fused), strategy
    fixed = make_fusion("fixed", {"metadata": 0.7, "thermal_map": 0.3}).fit(fit_rows, y)
    expected = weighted_average(other, {"metadata": 0.7, "thermal_map": 0.3})
    assert np.allclose(fixed.predict_proba(other), expected)


def test_geometric_fusion_is_a_weighted_geometric_mean() -> None:
    """p ∝ Π p_m^w_m over the branches a sample has (weights renormalised over them); a
    branch that gives a class almost nothing vetoes it, where the arithmetic mean dilutes."""
    from dfu_tui.engine.fusion import make_fusion

    w = {"metadata": 0.7, "thermal_map": 0.3}
    meta = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.5, 0.5, 0.0]])
    image = np.array([[0.2, 0.2, 0.6], [np.nan] * 3, [0.0, 0.5, 0.5]])
    probas = {"metadata": meta, "thermal_map": image}
    fused = make_fusion("geometric", w).fit(probas, np.zeros(3, int)).predict_proba(probas)
    first = meta[0] ** 0.7 * image[0] ** 0.3
    assert np.allclose(fused[0], first / first.sum())
    assert np.allclose(fused[1], meta[1])  # no image: metadata alone
    assert fused[2].argmax() == 1 and fused[2][0] < 0.05 and fused[2][2] < 0.05
    assert weighted_average(probas, w)[2][0] > 0.3  # the arithmetic mean keeps class 0


def test_clinical_scores_per_class_and_calibration() -> None:
    """Sensitivity is recall, specificity the true-negative rate, ROC AUC one-vs-rest (as
    scikit-learn computes each); the Brier score is the mean squared distance to the one-hot
    label; the reliability bins hold every sample once. A class absent from the fold has no
    sensitivity or AUC (None), never a number."""
    import numpy as np
    from sklearn.metrics import recall_score, roc_auc_score

    from dfu_tui.engine.metrics import clinical_scores

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 80)
    proba = rng.dirichlet([2, 2, 2], 80)
    proba[np.arange(80), y] += rng.random(80)  # some signal
    proba /= proba.sum(axis=1, keepdims=True)
    got = clinical_scores(y, proba)
    recall = recall_score(y, proba.argmax(axis=1), labels=[0, 1, 2], average=None)
    for i, c in enumerate("IPR"):
        assert got["sensitivity"][c] == pytest.approx(recall[i])
        negative = y != i
        tn = np.sum(negative & (proba.argmax(axis=1) != i))
        assert got["specificity"][c] == pytest.approx(tn / negative.sum())
        assert got["roc_auc"][c] == pytest.approx(roc_auc_score(y == i, proba[:, i]))
    onehot = np.eye(3)[y]
    assert got["brier"] == pytest.approx(float(((proba - onehot) ** 2).sum(axis=1).mean()))
    assert sum(int(b[2]) for b in got["reliability"]) == 80
    no_r = clinical_scores(np.array([0, 1, 0, 1]), np.eye(3)[[0, 1, 1, 1]])
    assert no_r["sensitivity"]["R"] is None and no_r["roc_auc"]["R"] is None
    assert no_r["specificity"]["R"] == 1.0
