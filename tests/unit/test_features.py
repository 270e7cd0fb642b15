"""The clinic's file quirks, feature groups, visit history and the leakage radar (no TensorFlow)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfu_tui.config import RadarConfig, load_config
from dfu_tui.data.dataset import load_dataset
from dfu_tui.data.history import add_visit_history
from dfu_tui.data.metadata import read_metadata
from dfu_tui.data.schema import (
    DAYS_SINCE_PREVIOUS,
    FEATURE_GROUPS,
    HISTORY_COLUMNS,
    METADATA_COLUMNS,
    VISIT_INDEX,
    change_column,
    previous_column,
)
from dfu_tui.errors import InputError
from tests.helpers import run_dfu

CSV = "DataMaster_Processed_V12_WithMissing.csv"
LABEL, PATIENT = "Healing Phase Abs", "Patient#"


def read(path: Path, **kw):
    return read_metadata(path, LABEL, PATIENT, **kw)


def same_samples(a, b) -> None:
    """Identical samples: keys, labels, patients and every value of every clinic column."""
    assert a.keys == b.keys
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.patients, b.patients)
    assert a.feature_columns == [c for c in b.feature_columns if c in a.feature_columns]
    known = [c for c in METADATA_COLUMNS if c in a.frame.columns]
    pd.testing.assert_frame_equal(a.frame[known], b.frame[known])


class TestRepeatedKeys:
    def test_demo_has_repeated_key_pairs_like_the_clinic(self, tiny_demo_master: Path) -> None:
        table = read(tiny_demo_master / CSV)
        assert table.duplicates_collapsed == 0  # the real file has no exact duplicates
        assert len(table.repeated_keys) == 3 and all(len(g) == 2 for g in table.repeated_keys)
        raw = pd.read_csv(tiny_demo_master / CSV, dtype=str, keep_default_na=False)
        for first, second in table.repeated_keys:
            a, b = raw.iloc[first - 2], raw.iloc[second - 2]
            assert a[LABEL] == b[LABEL]  # same label within a pair
            assert 7 <= float(b["Appt Days"]) - float(a["Appt Days"]) <= 56
        assert len(table.keys) == len(raw)  # every row is a sample

    def test_ids_number_each_occurrence(self, tiny_demo_master: Path) -> None:
        table = read(tiny_demo_master / CSV)
        ids = table.sample_ids()
        assert len(set(ids)) == len(ids)
        assert sum(i.endswith("#2") for i in ids) == 3

    def test_images_of_a_repeated_key_feed_each_sample(self, tiny_demo_master: Path) -> None:
        cfg = load_config(
            None,
            [f"data.root='{tiny_demo_master}'", "modalities.use=['thermal_map']"],
        )
        ds = load_dataset(cfg.dataset)
        crops = ds.crops["thermal_map"]
        table = ds.table
        for group in table.repeated_keys:
            rows = [table.lines.index(line) for line in group]
            files = [set(crops.files[crops.sample_index == r]) for r in rows]
            assert files[0] == files[1]  # same images, both samples; same patient, same fold
            assert table.patients[rows[0]] == table.patients[rows[1]]
        cov = ds.coverage()
        assert cov["repeated_key_samples"] == 6
        assert cov["modalities"]["thermal_map"]["repeated_key_samples_with_images"] >= 2

    def test_validate_warns_once_and_strict_refuses(
        self, tiny_demo_master: Path, tmp_path: Path
    ) -> None:
        import os

        env = dict(os.environ)
        cfg = [
            *("--set", f"data.root='{tiny_demo_master}'"),
            *("--set", "modalities.use=['metadata']", "--set", "cv.folds=2"),
        ]
        ok = run_dfu(env, "validate", "configs/default.toml", *cfg)
        assert ok.returncode == 0, ok.stderr
        warnings = [x for x in ok.stderr.splitlines() if "repeated on 6 rows" in x]
        assert len(warnings) == 1 and warnings[0].startswith("warning: ")
        assert CSV in warnings[0] and "Traceback" not in ok.stderr
        strict = run_dfu(env, "validate", "configs/default.toml", *cfg, "--strict")
        assert strict.returncode == 2
        assert any(x.startswith("error: ") and "repeated" in x for x in strict.stderr.splitlines())
        assert "on purpose" not in ok.stderr  # a folder of files: the clinic's quirk, not ours
        # the built-in demo says its repeated keys are planted, not a broken install
        demo = [*cfg[2:], *("--set", "demo.patients=30")]
        env["DFU_TUI_CACHE_DIR"] = str(tmp_path / "cache")
        planted = run_dfu(env, "validate", "configs/default.toml", *demo)
        assert planted.returncode == 0, planted.stderr
        assert "the demo plants these on purpose" in planted.stderr


def resave(text: str, variant: dict[str, object], seed: int) -> str:
    """The CSV as a spreadsheet might save it again."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    if variant["reorder"]:
        frame = frame[list(rng.permutation(frame.columns))]
    if variant["extra"]:
        frame["Notes"] = "x"
        frame[""] = ""  # an unnamed empty column (a trailing comma)
    if variant["spaces"]:
        for c in ("Foot Aspect", "Odor", "Dressing Grouped", LABEL):
            frame[c] = [f"  {v} " if v else v for v in frame[c]]
    out = frame.to_csv(index=False, lineterminator="\r\n" if variant["crlf"] else "\n")
    if variant["blank"]:
        out += "\r\n" if variant["crlf"] else "\n"
        out += "," * (frame.shape[1] - 1) + "\n"  # an empty row
    return ("\ufeff" if variant["bom"] else "") + out


class TestResave:
    @settings(
        max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        variant=st.fixed_dictionaries(
            {k: st.booleans() for k in ("reorder", "extra", "spaces", "crlf", "blank", "bom")}
        ),
        seed=st.integers(0, 1000),
    )
    def test_resaved_file_gives_identical_samples(
        self, tiny_demo_master: Path, tmp_path_factory: pytest.TempPathFactory, variant, seed
    ) -> None:
        original = read(tiny_demo_master / CSV)
        text = (tiny_demo_master / CSV).read_text(encoding="utf-8-sig")
        path = tmp_path_factory.mktemp("resave") / CSV
        path.write_bytes(resave(text, variant, seed).encode("utf-8"))
        again = read(path)
        same_samples(original, again)
        assert again.repeated_keys == original.repeated_keys
        assert again.extra_columns == (["Notes"] if variant["extra"] else [])


class TestFeatureGroups:
    def test_groups_and_names_are_left_out(self, tiny_demo_master: Path) -> None:
        full = read(tiny_demo_master / CSV)
        assert "Dressing Grouped" in full.feature_columns  # the default keeps treatment
        table = read(tiny_demo_master / CSV, exclude_columns=["treatment", "timing", "Age"])
        gone = {*FEATURE_GROUPS["treatment"], *FEATURE_GROUPS["timing"], "Age"}
        assert not gone & set(table.feature_columns)
        assert table.excluded["treatment"] and table.excluded["by name"] == ["Age"]
        assert set(full.feature_columns) - set(table.feature_columns) <= gone

    def test_unknown_name_is_one_line_naming_the_key(self, tiny_demo_master: Path) -> None:
        with pytest.raises(InputError) as exc:
            read(
                tiny_demo_master / CSV,
                exclude_columns=["treatmnt"],
                where="x.toml: features.exclude",
            )
        (line,) = exc.value.problems
        assert line.startswith("x.toml: features.exclude: 'treatmnt'")
        assert "did you mean 'treatment'" in line

    @pytest.mark.parametrize(
        "override, message",
        [
            ("features.compare='dressing'", "unknown group 'dressing'"),
            ("features.compare='history'", "needs features.history = true"),
            ("radar.repeats=0", "radar.repeats: must be >= 1"),
        ],
    )
    def test_config_errors(self, override: str, message: str) -> None:
        with pytest.raises(InputError) as exc:
            load_config(None, [override])
        assert any(message in p for p in exc.value.problems)

    def test_compare_excluded_group_is_refused(self) -> None:
        with pytest.raises(InputError, match="already excluded"):
            load_config(None, ["features.exclude=['treatment']", "features.compare='treatment'"])

    def test_imagenet_needs_an_application_backbone(self) -> None:
        with pytest.raises(InputError, match="small_cnn has no pretrained weights"):
            load_config(None, ["image_model.weights='imagenet'"])
        cfg = load_config(
            None, ["image_model.weights='imagenet'", "image_model.backbone='MobileNetV3Small'"]
        )
        assert cfg.image_model.weights == "imagenet"


def wounds(n_visits: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for patient in (1, 2):
        for dfu in (1, 2):
            for appt in range(n_visits):
                rows.append(
                    {
                        "Patient#": float(patient),
                        "DFU#": float(dfu),
                        "Appt#": float(appt),
                        "Appt Days": float(appt * 14 + patient),
                        "Wound Score": float(rng.integers(0, 4)),
                        "Pain Level": float(rng.integers(0, 5)),
                    }
                )
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)  # file order mixed


class TestVisitHistory:
    def test_previous_visit_and_change(self) -> None:
        frame = wounds()
        out = add_visit_history(frame, "Patient#")
        assert list(out.index) == list(frame.index)  # rows stay in place
        for _, wound in out.groupby(["Patient#", "DFU#"]):
            wound = wound.sort_values("Appt Days")
            assert list(wound[VISIT_INDEX]) == list(range(len(wound)))
            assert np.isnan(wound[DAYS_SINCE_PREVIOUS].iloc[0])
            assert (wound[DAYS_SINCE_PREVIOUS].iloc[1:] == 14).all()
            prev = wound[previous_column("Wound Score")].to_numpy()
            assert np.array_equal(prev[1:], wound["Wound Score"].to_numpy()[:-1])
            change = wound[change_column("Wound Score")].to_numpy()[1:]
            assert np.allclose(change, np.diff(wound["Wound Score"].to_numpy()))

    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 10_000), cut=st.integers(1, 4))
    def test_later_visits_never_change_a_visit(self, seed: int, cut: int) -> None:
        frame = wounds()
        before = add_visit_history(frame, "Patient#")
        later = frame["Appt#"] >= cut
        rng = np.random.default_rng(seed)
        shuffled = frame.copy()
        for c in ("Wound Score", "Pain Level"):  # any values for the later visits
            shuffled.loc[later, c] = rng.permutation(shuffled.loc[later, c].to_numpy()) + 10
        shuffled.loc[later, "Appt Days"] += rng.integers(0, 5, later.sum())
        after = add_visit_history(shuffled, "Patient#")
        history = [c for c in HISTORY_COLUMNS if c in before.columns]
        pd.testing.assert_frame_equal(before.loc[~later, history], after.loc[~later, history])

    def test_history_never_reads_the_label(self, tiny_demo_master: Path, tmp_path: Path) -> None:
        path = tmp_path / CSV
        shutil.copy(tiny_demo_master / CSV, path)
        a = read(path, history=True)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        raw[LABEL] = np.roll(raw[LABEL].to_numpy(), 1)
        raw["Healing Phase"] = "P"
        raw.to_csv(path, index=False)
        b = read(path, history=True)
        history = [c for c in HISTORY_COLUMNS if c in a.frame.columns]
        assert len(history) > 20 and set(history) <= set(a.feature_columns)
        pd.testing.assert_frame_equal(a.frame[history], b.frame[history])


class TestRadar:
    def test_batched_equals_sklearn_permutation_importance(self) -> None:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.inspection import permutation_importance
        from sklearn.metrics import make_scorer

        from dfu_tui.engine.radar import kappa, permutation_importances, plain_predict

        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy() + (X["c"] > 1).astype(int)
        model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X[:60], y[:60])
        ours = permutation_importances(
            plain_predict(model.predict), X[60:].to_numpy(), y[60:], 4, 7, list(X.columns)
        )

        ref = permutation_importance(
            model, X[60:], y[60:], scoring=make_scorer(kappa), n_repeats=4, random_state=7
        )
        assert np.allclose(ours.mean, ref.importances_mean)
        assert np.allclose(ours.std, ref.importances_std)
        assert ours.mean.argmax() == 0  # the column the label is made of

    def test_pipeline_outputs_permuted_as_sklearn_permutes_inputs(self) -> None:
        """Permuting a column's transformed outputs equals permuting the raw column."""
        from sklearn.inspection import permutation_importance
        from sklearn.metrics import make_scorer

        from dfu_tui.config import MetadataModelConfig
        from dfu_tui.engine.metadata_branch import build_metadata_branch
        from dfu_tui.engine.radar import (
            kappa,
            output_groups,
            permutation_importances,
            plain_predict,
        )

        rng = np.random.default_rng(2)
        n = 160
        y = rng.integers(0, 3, n)
        frame = pd.DataFrame(
            {
                "score": np.where(rng.random(n) < 0.2, np.nan, y + rng.normal(0, 0.7, n)),
                "age": rng.normal(60, 10, n),
                "dressing": np.where(y == 2, "NoDressing", "Antiseptic").astype(object),
                "odor": rng.choice(["NoOdor", "Unpleasant"], n).astype(object),
            }
        )
        frame.loc[::9, "dressing"] = np.nan
        cfg = MetadataModelConfig(n_estimators=30, n_jobs=1)
        model = build_metadata_branch(frame, cfg, 0).fit(frame[:100], y[:100])
        step, forest = model.named_steps["columns"], model.named_steps["forest"]
        mapping = output_groups(step, ["score", "age"], ["dressing", "odor"])
        matrix = step.transform(frame[100:]).astype(float)
        names = list(frame.columns)
        ours = permutation_importances(
            plain_predict(forest.predict), matrix, y[100:], 3, 5, names, [mapping[c] for c in names]
        )
        ref = permutation_importance(
            model, frame[100:], y[100:], scoring=make_scorer(kappa), n_repeats=3, random_state=5
        )
        assert np.allclose(ours.mean, ref.importances_mean)
        assert len(mapping["score"]) == 2  # the value and its missing indicator

    @pytest.mark.parametrize(("trees", "missing"), [(25, False), (2, False), (25, True)])
    def test_forest_predict_through_the_changed_trees_only_is_the_forests_predict(
        self, trees: int, missing: bool
    ) -> None:
        """Each permuted row through only the trees whose path it can change, on one thread
        or several: exactly the forest's own predictions, so exactly the same importances
        (with 2 trees many rows tie between classes: those are summed again in order; with
        missing values the forest routes them, and a shuffled-in missing value is always
        predicted again; values between two float32 numbers sit at the thresholds)."""
        from dfu_tui.engine.radar import (
            forest_predict,
            permutation_importances,
            permuted_copies,
            plain_predict,
        )

        rng = np.random.default_rng(4)
        n = 300
        y = rng.integers(0, 3, n)
        offset = np.where(np.arange(n) < 200, 0, rng.integers(0, 3, n))
        X = np.column_stack(
            [
                y + rng.normal(0, 0.8, n),  # informative
                rng.normal(size=n),
                rng.integers(0, 2, n),  # a one-hot pair, permuted together
                rng.integers(0, 2, n),
                np.round(rng.normal(size=n), 1),  # ties at thresholds
                # informative, fitted on steps of 3 float32 units (a threshold's nearest
                # float32 can be above it), scored on every unit
                1 + (np.clip(y + rng.integers(-1, 2, n), 0, 3) * 3 + offset) * 2.0**-23,
            ]
        )
        if missing:  # in the fit rows and the scored ones
            X[rng.random(n) < 0.2, 1] = np.nan
            X[rng.random(n) < 0.2, 4] = np.nan
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(
            n_estimators=trees, min_samples_leaf=3, class_weight="balanced", random_state=1
        ).fit(X[:200], y[:200])
        groups = [np.array([0]), np.array([1]), np.array([2, 3]), np.array([4]), np.array([5])]
        names = ["a", "b", "pair", "c", "steps"]
        seen: list[list[np.ndarray]] = []

        def recorded(
            matrix: np.ndarray, index: list[np.ndarray], shuffled: list[np.ndarray]
        ) -> tuple[np.ndarray, np.ndarray]:
            seen.append(shuffled)
            return plain_predict(forest.predict)(matrix, index, shuffled)

        reference = permutation_importances(recorded, X[200:], y[200:], 3, 9, names, groups)
        stacked = permuted_copies(X[200:], groups, seen[0])
        top = np.sort(forest.predict_proba(stacked), axis=1)
        ties = np.count_nonzero(top[:, -1] == top[:, -2])
        assert ties > 10 if trees == 2 else ties < len(stacked)
        for threads in (1, 3):
            base, predicted = forest_predict(forest, threads)(X[200:], groups, seen[0])
            assert np.array_equal(base, forest.predict(X[200:]))
            assert np.array_equal(predicted.ravel(), forest.predict(stacked))
            ours = permutation_importances(
                forest_predict(forest, threads), X[200:], y[200:], 3, 9, names, groups
            )
            assert np.array_equal(ours.mean, reference.mean)
            assert np.array_equal(ours.std, reference.std)
        assert reference.mean.argmax() == 0

    def test_single_feature_kappa_finds_the_informative_column(self) -> None:
        from dfu_tui.engine.radar import single_feature_kappas

        rng = np.random.default_rng(1)
        n = 240
        y = rng.integers(0, 3, n)
        groups = np.repeat(np.arange(60), 4)
        frame = pd.DataFrame(
            {
                "noise": rng.normal(size=n),
                "signal": y + rng.normal(0, 0.4, n),
                "text": np.where(y == 2, "NoDressing", "Antiseptic").astype(object),
            }
        )
        frame.loc[::7, "signal"] = np.nan  # missing values are routed, not a crash
        single = single_feature_kappas(frame, y, groups, 3, 0)
        assert single["signal"] > 0.5 and single["text"] > 0.3
        assert abs(single["noise"]) < 0.15

    def test_single_feature_kappa_with_the_input_check_skipped_is_the_checked_trees(
        self,
    ) -> None:
        """Clean columns skip the trees' input check: every kappa is still exactly what
        checked fits give, with missing values on the fit rows, on the other rows only, in
        text columns and nowhere; an infinity is still refused."""
        from sklearn.tree import DecisionTreeClassifier
        from sklearn.utils.class_weight import compute_sample_weight

        from dfu_tui.engine.folds import inner_folds
        from dfu_tui.engine.radar import encode_columns, kappa, single_feature_kappas

        rng = np.random.default_rng(5)
        n = 300
        y = rng.integers(0, 3, n)
        groups = np.repeat(np.arange(75), 4)
        frame = pd.DataFrame(
            {
                "clean": y + rng.normal(0, 0.9, n),
                "missing": np.where(rng.random(n) < 0.3, np.nan, y + rng.normal(0, 0.9, n)),
                "late_gap": y + rng.normal(0, 0.9, n),
                "steps": np.round(rng.normal(size=n), 1),
                "text": rng.choice(["a", "b", "c"], n).astype(object),
            }
        )
        splits = inner_folds(y, groups, 3, 0)
        frame.loc[splits[0][1][:5], "late_gap"] = np.nan  # missing only where predicted
        expected = {}
        for j, column in enumerate(frame.columns):
            predicted = np.zeros(n, dtype=np.int64)
            for train, val in splits:
                encoded = encode_columns(frame, train)[:, j : j + 1]
                tree = DecisionTreeClassifier(
                    max_depth=3, min_samples_leaf=max(5, len(train) // 50), random_state=0
                ).fit(
                    encoded[train],
                    y[train],
                    sample_weight=compute_sample_weight("balanced", y[train]),
                )
                predicted[val] = tree.classes_[tree.predict_proba(encoded[val]).argmax(1)]
            expected[column] = kappa(y, predicted)
        assert single_feature_kappas(frame, y, groups, 3, 0) == expected
        assert expected["clean"] > 0.2 and len(set(expected.values())) == len(expected)
        frame.loc[3, "clean"] = np.inf
        with pytest.raises(ValueError, match="infinity"):
            single_feature_kappas(frame, y, groups, 3, 0)

    def _rows(self, importance: dict[str, float], single: dict[str, float]):
        from dfu_tui.engine.radar import Importances, radar_table

        cols = list(importance)
        imp = Importances(
            cols, np.array([importance[c] for c in cols]), np.full(len(cols), 0.005), 0.4
        )
        return radar_table(imp, single)

    def test_dominant_and_treatment_flags(self) -> None:
        from dfu_tui.engine.radar import radar_flags

        cfg = RadarConfig()
        rows = self._rows(
            {"Dressing Grouped": 0.30, "Wound Score": 0.06, "Age": 0.01},
            {"Dressing Grouped": 0.70, "Wound Score": 0.20, "Age": 0.0},
        )
        flags = radar_flags(rows, cfg, n_val=161, n_train=324)
        rules = [(f.rule, f.detail.split(":")[0]) for f in flags]
        assert "unweighted kappa (validation fold, n=161)" in flags[0].detail
        assert "training fold, n=324" in flags[1].detail
        assert rules.count(("dominant_feature", "Dressing Grouped")) == 2
        assert ("treatment_feature", "Dressing Grouped") in rules
        assert "5.0x the next (Wound Score 0.060)" in flags[0].detail

    def test_balanced_features_raise_nothing(self) -> None:
        from dfu_tui.engine.radar import radar_flags

        rows = self._rows(
            {"Wound Score": 0.06, "Pain Level": 0.05, "Age": 0.04},
            {"Wound Score": 0.20, "Pain Level": 0.18, "Age": 0.1},
        )
        assert radar_flags(rows, RadarConfig()) == []

    def test_treatment_in_the_noise_is_not_flagged(self) -> None:
        from dfu_tui.engine.radar import radar_flags

        rows = self._rows(
            {"Wound Score": 0.06, "Offloading Score": 0.004, "Age": 0.04},
            {"Wound Score": 0.20, "Offloading Score": -0.01, "Age": 0.15},
        )
        assert [f.detail for f in radar_flags(rows, RadarConfig())] == []


class TestPaired:
    def test_interval_and_distinguishable(self) -> None:
        from dfu_tui.engine.paired import paired_difference

        d = paired_difference([0.40, 0.42, 0.38], [0.30, 0.33, 0.29])
        assert d["mean_difference"] == pytest.approx(0.0933, abs=1e-3)
        low, high = d["ci95"]
        assert 0 < low < d["mean_difference"] < high and d["distinguishable"]
        same = paired_difference([0.40, 0.30, 0.35], [0.35, 0.36, 0.34])
        assert not same["distinguishable"]
        one = paired_difference([0.4], [0.3])
        assert one["folds"] == 1 and not one["distinguishable"]


def test_same_columns_null_is_indistinguishable_from_zero(small_demo_master: Path) -> None:
    """Point 4 of the feature comparison: with each side averaged over `radar.forest_seeds`
    forests, the same columns with other seeds show a difference indistinguishable from 0
    (benchmarks/forest_seeds.py prints it before and after on the full demo)."""
    from dfu_tui.config import MetadataModelConfig
    from dfu_tui.engine.folds import make_folds
    from dfu_tui.engine.metadata_branch import seed_null
    from dfu_tui.engine.paired import paired_difference, test_train_ratio

    table = read(small_demo_master / CSV)
    frame = table.frame[list(table.feature_columns)]
    folds = [(f.train, f.val) for f in make_folds(table.labels, table.patients, 3, 42)]
    ratio = test_train_ratio([{"n_val": len(v), "n_train": len(t)} for t, v in folds])
    cfg = MetadataModelConfig(n_estimators=30, n_jobs=1)
    a, b = seed_null(frame, table.labels, folds, cfg, 42, RadarConfig().forest_seeds)
    assert a != b  # other seeds, other forests: a real null, not the same model twice
    null = paired_difference(a, b, ratio)
    assert not null["distinguishable"]
    assert abs(null["mean_difference"]) < 0.1
