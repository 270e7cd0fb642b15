"""Config loading: defaults, overrides, and one named line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from tests.helpers import ROOT


def problems_of(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path, overrides)
    return info.value.problems


class TestShippedConfigs:
    def test_default_matches_design(self) -> None:
        cfg = load_config(ROOT / "configs" / "default.toml")
        assert cfg.data.root == "demo"
        assert cfg.modalities.use == ["metadata", "thermal_map"]
        assert cfg.fusion.strategy == "fixed"
        assert cfg.fusion_weights() == pytest.approx({"metadata": 0.7, "thermal_map": 0.3})
        assert cfg.cv.folds == 3

    def test_quick_searches_every_combination(self) -> None:
        cfg = load_config(ROOT / "configs" / "quick.toml")
        assert cfg.modalities.search
        assert len(cfg.combinations) == 2 ** len(cfg.modalities.use) - 1

    def test_dfu_tui_opens_anywhere(self, tmp_path: Path, monkeypatch) -> None:
        """`dfu-tui` typed outside a checkout preselects the shipped default (it said
        "configs/default.toml: config file not found"); a configs/default.toml in the
        current folder wins; the repository's configs/ is the shipped folder."""
        from dfu_tui.cli import SHIPPED_CONFIGS, default_config

        assert (ROOT / "configs").resolve() == SHIPPED_CONFIGS
        monkeypatch.chdir(tmp_path)
        assert default_config() == SHIPPED_CONFIGS / "default.toml"
        assert load_config(default_config()) == load_config(ROOT / "configs" / "default.toml")
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "default.toml").write_text("[cv]\nfolds = 4\n")
        assert load_config(default_config()).cv.folds == 4

    def test_frozen(self) -> None:
        cfg = load_config(None)
        with pytest.raises(AttributeError):
            cfg.cv.folds = 5  # type: ignore[misc]

    def test_round_trip_through_toml(self, tmp_path: Path) -> None:
        cfg = load_config(ROOT / "configs" / "quick.toml")
        path = tmp_path / "resolved.toml"
        path.write_text(cfg.to_toml(), encoding="utf-8")
        again = load_config(path)
        assert again == cfg
        assert again.fingerprint() == cfg.fingerprint()


class TestWeights:
    def test_image_shorthand_splits_equally(self, tmp_path: Path) -> None:
        cfg = load_config(
            None,
            ["modalities.use=['metadata','thermal_map','depth_rgb']", "fusion.weights.image=0.3"],
        )
        w = cfg.fusion_weights()
        assert w == pytest.approx({"metadata": 0.7, "depth_rgb": 0.15, "thermal_map": 0.15})

    def test_renormalised_over_a_combination(self) -> None:
        cfg = load_config(None, ["modalities.use=['metadata','thermal_map','depth_rgb']"])
        assert cfg.fusion_weights(("metadata", "depth_rgb")) == pytest.approx(
            {"metadata": 0.7 / 0.85, "depth_rgb": 0.15 / 0.85}
        )

    def test_explicit_weight_wins_over_image(self) -> None:
        cfg = load_config(
            None,
            [
                "modalities.use=['metadata','thermal_map','depth_rgb']",
                "fusion.weights={metadata=0.5, thermal_map=0.3, image=0.2}",
            ],
        )
        assert cfg.fusion_weights()["depth_rgb"] == pytest.approx(0.2)


class TestErrors:
    def test_unknown_key_suggests(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[cv]\nfodls = 3\n")
        assert "c.toml" in line and "cv.fodls" in line and "did you mean 'cv.folds'" in line

    def test_unknown_section(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[fuson]\nstrategy='fixed'\n")
        assert "fuson" in line and "did you mean 'fusion'" in line

    def test_wrong_type(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[cv]\nfolds = 'three'\n")
        assert "cv.folds" in line and "expected integer" in line

    def test_negative_weight_and_bad_sum(self, tmp_path: Path) -> None:
        lines = problems_of(tmp_path, "[fusion]\nweights = { metadata = -0.2, image = 0.3 }\n")
        assert any("fusion.weights.metadata" in ln and ">= 0" in ln for ln in lines)
        assert any("fusion.weights" in ln and "sum to 1" in ln for ln in lines)

    @pytest.mark.parametrize(
        "text, key",
        [
            ("[fusion]\nweights = { metadata = nan, image = 0.3 }\n", "fusion.weights.metadata"),
            ("[fusion.weights]\nmetadata = 0.7\nimage = inf\n", "fusion.weights.image"),
            ("[collapse]\nabsolute_cap = nan\n", "collapse.absolute_cap"),
            ("[criteria]\nminimum_kappa = -inf\n", "criteria.minimum_kappa"),
            ("[image_model]\nlearning_rate = +nan\n", "image_model.learning_rate"),
            ("[executor]\ngpus_per_task = inf\n", "executor.gpus_per_task"),
        ],
    )
    def test_nan_and_inf_are_refused(self, tmp_path: Path, text: str, key: str) -> None:
        """TOML has nan and inf; every comparison with nan is false, so `>= 0` and `sum to 1`
        let it through. No setting takes one."""
        (line,) = problems_of(tmp_path, text)
        assert f"{key}: must be a finite number" in line

    def test_nan_from_the_command_line(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "", ("fusion.weights.metadata=nan",))
        assert "fusion.weights.metadata: must be a finite number, got nan" in line

    @pytest.mark.parametrize(
        "text, expect",
        [
            ("[demo]\npatients = 10000000\n", "demo.patients: must be between 6 and 2000"),
            ("[demo]\npatients = 5\n", "demo.patients: must be between 6 and 2000"),
            ("[cv]\nrepeats = 1000000\n", "cv.repeats: must be between 1 and 100"),
            ("[cv]\nrepeats = 0\n", "cv.repeats: must be between 1 and 100"),
        ],
    )
    def test_sizes_that_are_typos(self, tmp_path: Path, text: str, expect: str) -> None:
        """A demo of ten million patients (validate would generate it) or a million repeats
        (five million tasks) is refused before anything starts."""
        (line,) = problems_of(tmp_path, text)
        assert expect in line

    @pytest.mark.parametrize(
        "text, expect",
        [
            (
                "[data]\nroot = 'demo'\nmetadata_file = '../../../../etc/passwd'\n",
                "data.metadata_file: '..' leaves the dataset folder",
            ),
            ("[data.folders]\ndepth_rgb = '../../etc'\n", "data.folders.depth_rgb: '..' leaves"),
            ("[data.box_files]\ndepth = '/etc/shadow'\n", "data.box_files.depth: an absolute"),
            ("[data.box_files]\nthermal = '~/boxes.csv'\n", "data.box_files.thermal: an absolute"),
            ("[data.folders]\nthermal_map = ''\n", "data.folders.thermal_map: empty"),
            ("[data]\nroot = ' '\n", "data.root: empty"),
            ("[data]\nlabel_column = ''\n", "data.label_column: empty"),
            ("[data]\npatient_column = ' '\n", "data.patient_column: empty"),
        ],
    )
    def test_dataset_names_stay_inside_the_dataset(
        self, tmp_path: Path, text: str, expect: str
    ) -> None:
        """The demo writes its metadata file where `data.metadata_file` says: `..` would
        have it write outside its folder. No file or folder setting leaves the dataset."""
        lines = problems_of(tmp_path, text)
        assert any(expect in ln for ln in lines), lines

    def test_the_demo_metadata_file_is_a_file_name(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[data]\nroot = 'demo'\nmetadata_file = 'sub/m.csv'\n")
        assert "data.metadata_file: the demo writes its metadata CSV at the top" in line
        (tmp_path / "c.toml").write_text("[data]\nroot = '/data'\nmetadata_file = 'sub/m.csv'\n")
        load_config(tmp_path / "c.toml")  # a real dataset may keep it in a subfolder

    def test_sum_after_expanding_image(self, tmp_path: Path) -> None:
        text = (
            "[modalities]\nuse=['metadata','depth_rgb','thermal_map']\n"
            "[fusion]\nweights = { metadata = 0.6, image = 0.3 }\n"
        )
        (line,) = problems_of(tmp_path, text)
        assert "sum to 1, got 0.9" in line

    def test_unknown_and_missing_modality(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[modalities]\nuse=['metadata','thermal_mpa']\n")
        assert "unknown modality 'thermal_mpa'" in line and "thermal_map" in line
        (line,) = problems_of(tmp_path, "[modalities]\nuse=[]\n")
        assert "modalities.use" in line and "no modality" in line

    def test_folds_below_two(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[cv]\nfolds = 1\n")
        assert "cv.folds" in line and ">= 2" in line

    def test_every_problem_reported_together(self, tmp_path: Path) -> None:
        text = "[cv]\nfolds = 1\nfodls = 2\n[fusion]\nstrategy = 'magic'\n"
        lines = problems_of(tmp_path, text)
        assert len(lines) == 3
        assert all(ln.startswith(str(tmp_path / "c.toml")) for ln in lines)

    def test_imagenet_refused_for_small_cnn(self, tmp_path: Path) -> None:
        (line,) = problems_of(tmp_path, "[image_model]\nweights = 'imagenet'\n")
        assert "image_model.weights" in line and "small_cnn has no pretrained weights" in line

    def test_bad_override(self, tmp_path: Path) -> None:
        lines = problems_of(tmp_path, "", ("cv.folds=x", "nosection=1"))
        assert any("cv.folds" in ln and "expected integer" in ln for ln in lines)
        assert any("--set nosection=1" in ln for ln in lines)

    def test_missing_file_and_bad_toml(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="config file not found"):
            load_config(tmp_path / "nope.toml")
        (line,) = problems_of(tmp_path, "[cv\nfolds=3")
        assert "invalid TOML" in line


def test_overrides_apply() -> None:
    cfg = load_config(None, ["cv.folds=5", "fusion.strategy=stacked", "data.root=/x"])
    assert (cfg.cv.folds, cfg.fusion.strategy, cfg.data.root) == (5, "stacked", "/x")
    assert isinstance(cfg, Config)


def test_every_limited_setting_is_checked_against_its_declared_range() -> None:
    """Each `limited` setting (all ten collapse thresholds among them): its default passes,
    a value just outside either end (each end it has) is one error naming the key and the
    range."""
    import dataclasses

    from dfu_tui.config import CollapseConfig, Config
    from dfu_tui.errors import InputError

    cfg = Config()
    sections = [f.name for f in dataclasses.fields(Config)]
    limited = [
        (section, f)
        for section in sections
        if dataclasses.is_dataclass(getattr(cfg, section))
        for f in dataclasses.fields(getattr(cfg, section))
        if "range" in f.metadata
    ]
    assert {f.name for s, f in limited if s == "collapse"} == {
        f.name for f in dataclasses.fields(CollapseConfig)
    }
    assert len(limited) >= 35  # every range of a section is declared beside its field
    for section, f in limited:
        low, high, low_open, high_open = f.metadata["range"]
        integer = f.type in (int, "int")
        step = 1 if integer else 1e-3
        outside = []
        if low is not None:
            outside.append(low if low_open else low - step)
        if high is not None:
            outside.append(high if high_open else high + step)
        for value in outside:
            value = int(value) if integer else float(value)
            with pytest.raises(InputError) as info:
                load_config(None, [f"{section}.{f.name}={value!r}"])
            (line,) = info.value.problems
            assert f"{section}.{f.name}: must be " in line and f"got {value!r}" in line, line


def test_every_option_names_its_allowed_values() -> None:
    """Each option declared as a `Literal`: a value outside it is one error naming the key,
    the value, every allowed one and the nearest."""
    import dataclasses
    import typing

    from dfu_tui.config import Config
    from dfu_tui.errors import InputError

    cfg = Config()
    options = [
        (section.name, name, typing.get_args(tp))
        for section in dataclasses.fields(Config)
        if dataclasses.is_dataclass(getattr(cfg, section.name))
        for name, tp in typing.get_type_hints(type(getattr(cfg, section.name))).items()
        if typing.get_origin(tp) is typing.Literal
    ]
    assert {f"{s}.{n}" for s, n, _ in options} >= {
        "cv.strategy",
        "criteria.metric",
        "executor.kind",
        "image_model.loss",
        "metadata_model.max_features",
        "metadata_model.class_weight",
    }
    for section, name, allowed in options:
        typo = allowed[0][:-1] + "x"
        with pytest.raises(InputError) as info:
            load_config(None, [f"{section}.{name}='{typo}'"])
        (line,) = info.value.problems
        assert f"{section}.{name}: '{typo}' is not one of {', '.join(allowed)}" in line
        assert f"did you mean '{allowed[0]}'" in line, line


def test_renamed_settings_still_load_under_their_old_names(tmp_path: Path) -> None:
    """A config written before a rename (a saved run's, a user's, a --set) loads as the new
    key; both names at once is one error; a fingerprint saved under the old name is not a
    difference."""
    from dfu_tui.config import RENAMED, Config
    from dfu_tui.errors import InputError
    from dfu_tui.runs.fingerprint import differences

    assert RENAMED
    for old, new in RENAMED.items():
        section, key = old.split(".")
        path = tmp_path / "old.toml"
        path.write_text(f"[{section}]\n{key} = 0.31\n")
        cfg = load_config(path)
        new_key = new.split(".")[1]
        assert getattr(getattr(cfg, section), new_key) == 0.31
        assert getattr(load_config(None, [f"{old}=0.29"]), section).__dict__[new_key] == 0.29
        path.write_text(f"[{section}]\n{key} = 0.31\n{new_key} = 0.2\n")
        with pytest.raises(InputError, match=f"{section}.{key}: renamed {new}"):
            load_config(path)
        saved = Config().to_dict()
        saved[section] = {(key if k == new_key else k): v for k, v in saved[section].items()}
        assert differences({"config": saved}, {"config": Config().to_dict()}) == []
        # an old file with any --set (a resume with --executor, a launch from a saved run):
        # the old name keeps its value; a --set of the setting, by either name, wins
        path.write_text(f"[{section}]\n{key} = 0.31\n")
        for override, value in (("cv.seed=7", 0.31), (f"{new}=0.27", 0.27), (f"{old}=0.26", 0.26)):
            cfg = load_config(path, [override, "executor.kind='ray'"])
            assert getattr(getattr(cfg, section), new_key) == value, override
