"""The dataset loader on the clinic's format: sample table, crops, cache, demo round trip."""

from __future__ import annotations

import csv
import hashlib
import io
import stat
from pathlib import Path

import numpy as np
import pytest

from dfu_tui.config import load_config
from dfu_tui.data import images
from dfu_tui.data.dataset import load_dataset
from dfu_tui.data.demo import write_demo
from dfu_tui.data.metadata import read_metadata
from dfu_tui.data.schema import LABEL_DERIVED_COLUMNS, METADATA_COLUMNS

# The header line exactly as data-format.md gives it.
DOCUMENTED_HEADER = (
    'ID,Patient#,Age,"Sex (F:0, M:1)",Weight (Kg),Height (cm),Smoking,Alcohol Consumption,'
    "Habits Score,Type of Diabetes,Heart Conditions,Cancer History,Sensory Peripheral,"
    'Clinical Score,Number of DFUs,DFU#,"Side (Left:0, Right:1)",Foot Aspect,Location,'
    '"Location Grouped (Hallux:1,Toes,Middle,Heel,Ankle:5)",Onset (Days),No Toes Deformities,'
    "Bunion,Claw,Hammer,Charcot Arthropathy,Flat (Pes Planus) Arch,Abnormally High Arch,"
    "No Arch Deformities,Foot Score,Appt#,Appt Days,Wound Centre Temperature (°C),"
    "Peri-Ulcer Temperature (°C),Intact Skin Temperature (°C),"
    "Wound Centre Temperature Normalized (°C),Peri-Ulcer Temperature Normalized (°C),Pain Level,"
    "Type of Pain,Type of Pain Grouped,Type of Pain2,Type of Pain_Grouped2,Wound Tunneling,"
    '"Exudate Amount (None:0,Minor,Medium,Severe:3)",'
    '"Exudate Appearance (Serous:1,Haemoserous,Bloody,Thick:4)",Odor,'
    '"No Peri-ulcer Conditions (False:0, True:1)",Erythema at Peri-ulcer,Edema at Peri-ulcer,'
    "Pale Colour at Peri-ulcer,Maceration at Peri-ulcer,Wound Score,Dressing,Dressing Grouped,"
    "No Foot Abnormalities,Foot Hair Loss,Foot Dry Skin,Foot Fissure Cracks,Foot Callus,"
    "Thickened Toenail,Foot Fungal Nails,Leg Score,No Offloading,"
    "Offloading: Therapeutic Footwear,Offloading: Scotcast Boot or RCW,"
    "Offloading: Half Shoes or Sandals,Offloading: Total Contact Cast,"
    '"Offloading: Crutches, Walkers or Wheelchairs",Offloading Score,Healing Phase,'
    "Phase Confidence (%),Healing Phase Abs"
)


def config_for(root: Path, *overrides: str):
    use = "modalities.use=['metadata','depth_rgb','depth_map','thermal_rgb','thermal_map']"
    return load_config(None, [f"data.root='{root}'", use, "data.image_size=32", *overrides])


class TestMetadata:
    def test_documented_header_is_the_schema(self) -> None:
        assert tuple(next(csv.reader(io.StringIO(DOCUMENTED_HEADER)))) == METADATA_COLUMNS
        assert len(METADATA_COLUMNS) == 72

    def test_csv_with_documented_header_loads(self, tmp_path: Path) -> None:
        row = {c: "" for c in METADATA_COLUMNS}
        row.update({"ID": "4821", "Patient#": "7", "Appt#": "0", "DFU#": "1", "Age": "61"})
        row.update({"Healing Phase Abs": "P", "Healing Phase": "P+", "Sex (F:0, M:1)": "M"})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METADATA_COLUMNS)
        buf.write(DOCUMENTED_HEADER + "\r\n")
        writer.writerow(row)
        path = tmp_path / "m.csv"
        path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
        table = read_metadata(path, "Healing Phase Abs", "Patient#")
        assert table.keys == [(7, 0, 1)]
        assert table.frame["Age"].iloc[0] == 61.0
        assert np.isnan(table.frame["Weight (Kg)"].iloc[0])

    def test_label_and_ids_never_features(self, tiny_demo_master: Path) -> None:
        table = read_metadata(
            tiny_demo_master / "DataMaster_Processed_V12_WithMissing.csv",
            "Healing Phase Abs",
            "Patient#",
        )
        forbidden = {"Healing Phase Abs", "Patient#", "ID", *LABEL_DERIVED_COLUMNS}
        assert not forbidden & set(table.feature_columns)
        assert "Location" not in table.feature_columns  # free text: its grouped version is used
        assert "Location Grouped (Hallux:1,Toes,Middle,Heel,Ankle:5)" in table.feature_columns

    def test_exact_duplicates_collapsed(self, tmp_path: Path) -> None:
        write_demo(tmp_path / "d", patients=14, seed=3, exact_duplicates=3, images=False)
        path = tmp_path / "d" / "DataMaster_Processed_V12_WithMissing.csv"
        table = read_metadata(path, "Healing Phase Abs", "Patient#")
        raw_rows = len(path.read_text(encoding="utf-8-sig").splitlines()) - 1
        assert table.duplicates_collapsed == 3
        assert len(table.keys) == raw_rows - 3


class TestCrops:
    def test_every_crop_belongs_to_its_sample(self, tiny_demo_master: Path) -> None:
        ds = load_dataset(config_for(tiny_demo_master).dataset)
        for m, crops in ds.crops.items():
            assert crops.crops.shape[1:] == (32, 32, 3), m
            assert len(crops.crops) == len(crops.sample_index) == len(crops.files)
            for name, row in zip(crops.files, crops.sample_index, strict=True):
                patient, appt, dfu = ds.table.keys[row]
                assert f"_P{patient:03d}{appt:02d}" in str(name)
            assert crops.skipped == []

    def test_a_shot_with_two_wounds_feeds_both_samples(self, tiny_demo_master: Path) -> None:
        ds = load_dataset(config_for(tiny_demo_master).dataset)
        crops = ds.crops["thermal_map"]
        by_file: dict[str, set[int]] = {}
        for name, row in zip(crops.files, crops.sample_index, strict=True):
            by_file.setdefault(str(name), set()).add(ds.table.keys[row][2])
        assert any(len(dfus) == 2 for dfus in by_file.values())

    def test_second_load_decodes_nothing(self, tiny_demo: Path, tmp_path: Path) -> None:
        cfg = config_for(tiny_demo, f"data.cache_dir='{tmp_path / 'cache'}'")
        before = images.decode_count
        first = load_dataset(cfg.dataset)
        decoded = images.decode_count - before
        assert decoded > 0 and not any(c.from_cache for c in first.crops.values())
        second = load_dataset(cfg.dataset)
        assert images.decode_count - before == decoded
        assert all(c.from_cache for c in second.crops.values())
        for m in first.crops:
            assert np.array_equal(first.crops[m].crops, second.crops[m].crops)
        cache = tmp_path / "cache" / "crops"
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        files = list(cache.iterdir())
        assert len(files) == 4 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    def test_changed_image_rebuilds_that_modality_only(
        self, tiny_demo: Path, tmp_path: Path
    ) -> None:
        cfg = config_for(tiny_demo, f"data.cache_dir='{tmp_path / 'cache'}'")
        load_dataset(cfg.dataset)
        victim = sorted((tiny_demo / "Depth_RGB").iterdir())[0]
        victim.write_bytes(b"not a png")
        again = load_dataset(cfg.dataset)
        assert not again.crops["depth_rgb"].from_cache
        assert again.crops["thermal_map"].from_cache
        assert again.crops["depth_rgb"].counts == {"corrupt image": 1}


class TestDemo:
    def test_format(self, tiny_demo_master: Path) -> None:
        raw = (tiny_demo_master / "DataMaster_Processed_V12_WithMissing.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        header = raw[3:].decode("utf-8").splitlines()[0]
        assert header == DOCUMENTED_HEADER
        for folder in ("Depth_RGB", "Depth_Map_IMG", "Thermal_RGB", "Thermal_Map_IMG"):
            assert any((tiny_demo_master / folder).glob("*_P*.png"))
        depth = (tiny_demo_master / "bounding_box_depth.csv").read_text().splitlines()[1]
        thermal = (tiny_demo_master / "bounding_box_thermal.csv").read_text().splitlines()[1]
        d_patient, t_patient = depth.split(",")[1], thermal.split(",")[1]
        assert len(d_patient) == 3 and d_patient.startswith("0")  # zero-padded
        assert t_patient == str(int(t_patient))  # not padded

    def test_a_look_at_the_demo_generates_nothing(self, tmp_path: Path, monkeypatch) -> None:
        """The launch form's counts: the built-in demo before its first use is not generated
        by a look (None); once it exists, it is counted like any folder."""
        from dfu_tui.data.dataset import image_counts
        from dfu_tui.data.demo import ensure_demo_dataset

        monkeypatch.setenv("DFU_TUI_CACHE_DIR", str(tmp_path / "cache"))
        cfg = load_config(None, ["data.root='demo'", "demo.patients=6"]).dataset
        assert image_counts(cfg) is None
        assert not (tmp_path / "cache").exists()  # not even a folder
        root = ensure_demo_dataset(6, cfg.demo.seed, cfg.data.metadata_file)
        found = image_counts(cfg)
        assert found is not None
        total, counts = found
        assert total == len(load_dataset(config_for(root).dataset, modalities=[]).table.keys)
        assert set(counts) == {"depth_rgb", "depth_map", "thermal_rgb", "thermal_map"}
        assert all(0 < n <= total for n in counts.values())

    def test_deterministic_for_a_seed(self, tmp_path: Path) -> None:
        def digest(root: Path) -> str:
            h = hashlib.sha256()
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
            return h.hexdigest()

        a = write_demo(tmp_path / "a", patients=8, seed=5).root
        b = write_demo(tmp_path / "b", patients=8, seed=5).root
        c = write_demo(tmp_path / "c", patients=8, seed=6).root
        assert digest(a) == digest(b) != digest(c)
        assert stat.S_IMODE(a.stat().st_mode) == 0o700
        assert stat.S_IMODE((a / "Depth_RGB").stat().st_mode) == 0o700

    def test_round_trip_through_loader(self, tiny_demo_master: Path) -> None:
        ds = load_dataset(config_for(tiny_demo_master).dataset)
        cov = ds.coverage()
        assert cov["patients"] == 14
        assert set(np.unique(ds.table.labels)) <= {0, 1, 2}
        for info in cov["modalities"].values():
            assert 0 < info["samples_with_images"] <= ds.n_samples

    def test_the_metadata_does_not_depend_on_the_images(self, tmp_path: Path) -> None:
        """A demo written without its images has the very same metadata file."""
        both = write_demo(tmp_path / "a", patients=8, seed=4)
        alone = write_demo(tmp_path / "b", patients=8, seed=4, images=False)
        assert both.images > 0 and alone.images == 0
        name = "DataMaster_Processed_V12_WithMissing.csv"
        assert (both.root / name).read_bytes() == (alone.root / name).read_bytes()

    def test_realistic_shares_and_visits(self, tmp_path: Path) -> None:
        # the metadata alone (the same as with images: the test above), 160 patients
        root = write_demo(tmp_path / "d", patients=160, seed=0, images=False).root
        table = read_metadata(
            root / "DataMaster_Processed_V12_WithMissing.csv", "Healing Phase Abs", "Patient#"
        )
        shares = np.bincount(table.labels, minlength=3) / len(table.labels)
        assert shares == pytest.approx([0.31, 0.56, 0.13], abs=0.05)
        appts = table.frame["Appt#"]
        assert appts.min() == 0 and appts.max() <= 13
        assert table.frame["Type of Pain2"].isna().mean() == pytest.approx(0.80, abs=0.05)
