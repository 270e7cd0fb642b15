"""The synthetic demo dataset, written in exactly the clinic's format, deterministic from a seed.

Each wound's phase tends to move I -> P -> R over visits. Every modality carries a noisy
copy of the phase: metadata strongest (several weakly informative columns), depth_map
weakest, so models reach modest kappas and can overfit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from dfu_tui.data import demo_images
from dfu_tui.data.filenames import ImageName
from dfu_tui.data.schema import (
    BOX_COLUMNS,
    CAMERAS,
    CLASSES,
    DEFAULT_BOX_FILES,
    DEFAULT_FOLDERS,
    DEFAULT_METADATA_FILE,
    METADATA_COLUMNS,
)
from dfu_tui.paths import make_private_tree, private_dir, user_cache_dir

# Bump when the generator's output changes, so a cached demo is regenerated.
DEMO_VERSION = 3
DEFAULT_PATIENTS = 160


DRESSING_GROUP = {
    "Betadine": "Antiseptic",
    "Idosorb": "AbsorbentDressing",
    "0": "NoDressing",
    "polysporin": "BasicDressing",
    "vac": "AdvancedMethod",
    "Primapore": "BasicDressing",
}

_START = np.array([0.56, 0.42, 0.02])  # first-visit phase shares (I, P, R)
_STEP = np.array(  # phase transition between visits
    [[0.55, 0.43, 0.02], [0.04, 0.84, 0.12], [0.00, 0.30, 0.70]]
)


@dataclass(frozen=True)
class DemoSummary:
    """What the generator wrote."""

    root: Path
    patients: int
    rows: int
    images: int
    bytes: int
    seconds: float


def _choice(rng: np.random.Generator, spec: dict[object, float], n: int) -> np.ndarray:
    values = list(spec)
    p = np.array(list(spec.values()), dtype=float)
    return np.array(values, dtype=object)[rng.choice(len(values), size=n, p=p / p.sum())]


def _visits(rng: np.random.Generator, patients: int) -> pd.DataFrame:
    """One row per (patient, visit, wound) with its phase."""
    rows = []
    for pid in range(1, patients + 1):
        n_visits = int(min(14, rng.geometric(0.38)))
        n_wounds = 2 if rng.random() < 0.2 else 1
        gap = rng.integers(7, 35)
        for dfu in range(1, n_wounds + 1):
            phase = rng.choice(3, p=_START)
            for appt in range(n_visits):
                if appt > 0:
                    phase = rng.choice(3, p=_STEP[phase])
                rows.append((pid, appt, dfu, int(phase), n_wounds, int(appt * gap)))
    return pd.DataFrame(rows, columns=["Patient#", "Appt#", "DFU#", "phase", "nw", "days"])


#: Ulcer locations as the clinic writes them, with their relative frequencies.
LOCATIONS: dict[Any, Any] = {
    "sub 1st": 11,
    "heel": 5,
    "2nd metatarsal": 4,
    "Big Toe": 3,
    "hallux": 3,
    "lateral mid foot": 2,
    "3rd toe": 2,
    "5th met head": 2,
    "dorsal 2nd toe": 1,
}

#: The clinic's grouping of each location.
LOCATION_GROUP: dict[Any, Any] = {
    "sub 1st": "Hallux",
    "heel": "Heel",
    "2nd metatarsal": "toes",
    "Big Toe": "Hallux",
    "hallux": "Hallux",
    "lateral mid foot": "middle",
    "3rd toe": "toes",
    "5th met head": "toes",
    "dorsal 2nd toe": "toes",
}

#: Type of Pain, with relative frequencies ("0": none).
PAIN_TYPES: dict[Any, Any] = {
    "0": 81,
    "Frequent": 4,
    "pressure pain": 3,
    "pinching/throbbing": 2,
    "shooting pain": 1,
    "Calf": 1,
    "burning": 1,
}

#: The clinic's grouping of each type of pain.
PAIN_GROUP: dict[Any, Any] = {
    "0": "NoPain",
    "Frequent": "ChronicPain",
    "pressure pain": "PressureAndMovement",
    "pinching/throbbing": "ThrobbingPain",
    "shooting pain": "ShootingPain",
    "Calf": "GeneralAches",
    "burning": "LocalizedPain",
}

#: A second type of pain, where one is recorded (80 % blank).
PAIN2_TYPES: dict[Any, Any] = {
    "Frequent": 21,
    "pressure pain": 17,
    "pinching/throbbing": 9,
    "Calf": 3,
    "burn": 3,
}

#: Its grouping, spelled as the clinic's file spells it.
PAIN2_GROUP: dict[Any, Any] = {
    "Frequent": "ChronicPain",
    "pressure pain": "PressureandMovement",
    "pinching/throbbing": "ThrobbingPain",
    "Calf": "GeneralAches",
    "burn": "LocalizedPain",
}

#: Dressings, with relative frequencies.
DRESSINGS: dict[Any, Any] = {
    "Betadine": 80,
    "Idosorb": 8,
    "0": 4,
    "polysporin": 2,
    "vac": 2,
    "Primapore": 1,
}

#: Per-column missing rates like the real data's.
MISSING_RATES: dict[Any, Any] = {  # per-column missing rates like the real data's
    "Age": 0.002,
    "Weight (Kg)": 0.029,
    "Height (cm)": 0.027,
    "Type of Diabetes": 0.035,
    "Sensory Peripheral": 0.019,
    "Clinical Score": 0.055,
    "Onset (Days)": 0.044,
    "Wound Centre Temperature (°C)": 0.046,
    "Peri-Ulcer Temperature (°C)": 0.047,
    "Intact Skin Temperature (°C)": 0.051,
    "Wound Centre Temperature Normalized (°C)": 0.051,
    "Peri-Ulcer Temperature Normalized (°C)": 0.051,
    "Pain Level": 0.008,
    "Type of Pain": 0.008,
    "Type of Pain Grouped": 0.008,
    "Type of Pain2": 0.804,
    "Type of Pain_Grouped2": 0.804,
    "Wound Tunneling": 0.022,
    "Exudate Amount (None:0,Minor,Medium,Severe:3)": 0.028,
    "Exudate Appearance (Serous:1,Haemoserous,Bloody,Thick:4)": 0.217,
    "Odor": 0.019,
    "Wound Score": 0.024,
    "Dressing": 0.02,
    "Dressing Grouped": 0.02,
    "Charcot Arthropathy": 0.052,
    "Foot Score": 0.063,
    "Phase Confidence (%)": 0.034,
    "Erythema at Peri-ulcer": 0.024,
    "Edema at Peri-ulcer": 0.024,
    "Leg Score": 0.024,
    "No Offloading": 0.011,
    "Offloading Score": 0.011,
    "Bunion": 0.038,
    "Claw": 0.038,
}


def _metadata(rng: np.random.Generator, v: pd.DataFrame) -> pd.DataFrame:
    """All 72 columns with realistic marginals and a few weakly informative ones."""
    n = len(v)
    pid = v["Patient#"].to_numpy()
    phase = v["phase"].to_numpy().astype(float)
    # Patient-level draws, broadcast to rows.
    pats = np.unique(pid)
    per = {p: i for i, p in enumerate(pats)}
    pi = np.array([per[p] for p in pid])

    def patient(spec: dict[object, float]) -> np.ndarray:
        return _choice(rng, spec, len(pats))[pi]

    # The phase as the metadata sees it: a noisy copy, plus a per-patient offset.
    seen = phase + rng.normal(0, 0.75, n) + rng.normal(0, 0.35, len(pats))[pi]

    def graded(levels: list[object], slope: float, noise: float = 0.8) -> np.ndarray:
        """A code that falls (slope < 0) or rises with the seen phase."""
        z = slope * seen + rng.normal(0, noise, n)
        qs = np.quantile(z, np.linspace(0, 1, len(levels) + 1)[1:-1])
        return np.array(levels, dtype=object)[np.searchsorted(qs, z)]

    def flag(p: float, per_phase: float = 0.0) -> np.ndarray:
        prob = np.clip(p + per_phase * (seen - 1.0), 0.01, 0.99)
        return (rng.random(n) < prob).astype(int).astype(object)

    age = np.clip(rng.normal(62, 12, len(pats)), 27, 93).round()[pi]
    weight = np.clip(rng.normal(95, 22, len(pats)), 50, 220).round(1)[pi]
    height = np.clip(rng.normal(176, 9, len(pats)), 142, 198).round()[pi]
    smoking = patient({0: 87, 2: 3, 3: 10})
    alcohol = patient({0: 74, 1: 18, 2: 5, 3: 3})
    intact = np.clip(rng.normal(30.3, 2.0, n), 14, 38.8)
    centre_norm = 0.06 - 0.045 * seen + rng.normal(0, 0.05, n)
    peri_norm = 0.03 - 0.02 * seen + rng.normal(0, 0.05, n)
    location = _choice(
        rng,
        LOCATIONS,
        n,
    )
    pain_type = _choice(
        rng,
        PAIN_TYPES,
        n,
    )
    pain2 = _choice(rng, PAIN2_TYPES, n)
    dressing = _choice(rng, DRESSINGS, n)
    fine = {0: ["I+", "I", "I-"], 1: ["P+", "P", "P-"], 2: ["R+", "R", "R-"]}
    cols: dict[str, object] = {
        "ID": np.array([f"{(7919 * p) % 9000 + 1000}" for p in pid], dtype=object),
        "Patient#": pid,
        "Age": age,
        "Sex (F:0, M:1)": patient({"M": 80, "F": 20}),
        "Weight (Kg)": weight,
        "Height (cm)": height,
        "Smoking": smoking,
        "Alcohol Consumption": alcohol,
        "Habits Score": (smoking.astype(int) + alcohol.astype(int)).astype(object),
        "Type of Diabetes": patient({1: 23, 2: 77}),
        "Heart Conditions": patient({0: 57, 1: 43}),
        "Cancer History": patient({0: 89, 1: 11}),
        "Sensory Peripheral": patient({0: 14, 1: 86}),
        "Clinical Score": patient({1: 3, 2: 16, 3: 44, 4: 33, 5: 3}),
        "Number of DFUs": v["nw"].to_numpy(),
        "DFU#": v["DFU#"].to_numpy(),
        "Side (Left:0, Right:1)": _choice(rng, {"Right": 52, "Left": 48}, n),
        "Foot Aspect": _choice(rng, {"Plantar": 87, "Dorsal": 10, "Lateral": 2, "Medial": 1}, n),
        "Location": location,
        "Location Grouped (Hallux:1,Toes,Middle,Heel,Ankle:5)": np.array(
            [LOCATION_GROUP[x] for x in location], dtype=object
        ),
        "Onset (Days)": np.clip(rng.lognormal(5.4, 1.0, n) + v["days"].to_numpy(), 0, 7071).round(),
        "No Toes Deformities": patient({0: 43, 1: 57}),
        "Bunion": patient({0: 93, 1: 7}),
        "Claw": patient({0: 86, 1: 14}),
        "Hammer": patient({0: 78, 1: 22}),
        "Charcot Arthropathy": patient({0: 90, 1: 10}),
        "Flat (Pes Planus) Arch": patient({0: 75, 1: 25}),
        "Abnormally High Arch": patient({0: 95, 1: 5}),
        "No Arch Deformities": patient({0: 39, 1: 61}),
        "Foot Score": patient({0: 46, 1: 33, 2: 18, 3: 3}),
        "Appt#": v["Appt#"].to_numpy(),
        "Appt Days": v["days"].to_numpy(),
        "Wound Centre Temperature (°C)": (intact * (1 + centre_norm)).round(1),
        "Peri-Ulcer Temperature (°C)": (intact * (1 + peri_norm)).round(1),
        "Intact Skin Temperature (°C)": intact.round(1),
        "Wound Centre Temperature Normalized (°C)": centre_norm.round(5),
        "Peri-Ulcer Temperature Normalized (°C)": peri_norm.round(5),
        "Pain Level": graded([0, 0, 0, 0, 1, 2, 3, 4, 5], -0.3, 1.5),
        "Type of Pain": pain_type,
        "Type of Pain Grouped": np.array([PAIN_GROUP[x] for x in pain_type], dtype=object),
        "Type of Pain2": pain2,
        "Type of Pain_Grouped2": np.array([PAIN2_GROUP[x] for x in pain2], dtype=object),
        "Wound Tunneling": graded([0, 0, 0, 0, 0, 0, 0, 1, 1, 2], -0.5),
        "Exudate Amount (None:0,Minor,Medium,Severe:3)": graded([2, 1, 1, 1, 0, 0], 1.0),
        "Exudate Appearance (Serous:1,Haemoserous,Bloody,Thick:4)": graded(
            ["Bloody", "Bloody", "Haemoserous", "Serous", "Serous"], 0.8, 1.0
        ),
        "Odor": _choice(rng, {"NoOdor": 96, "Unpleasant": 4}, n),
        "No Peri-ulcer Conditions (False:0, True:1)": flag(0.39, 0.15),
        "Erythema at Peri-ulcer": flag(0.13, -0.1),
        "Edema at Peri-ulcer": flag(0.23, -0.1),
        "Pale Colour at Peri-ulcer": flag(0.16, 0.05),
        "Maceration at Peri-ulcer": flag(0.11),
        "Wound Score": graded([2, 1, 1, 0, 0, 0], 1.2),
        "Dressing": dressing,
        "Dressing Grouped": np.array([DRESSING_GROUP[x] for x in dressing], dtype=object),
        "No Foot Abnormalities": patient({0: 84, 1: 16}),
        "Foot Hair Loss": patient({0: 89, 1: 11}),
        "Foot Dry Skin": patient({0: 46, 1: 54}),
        "Foot Fissure Cracks": patient({0: 84, 1: 16}),
        "Foot Callus": patient({0: 63, 1: 37}),
        "Thickened Toenail": patient({0: 83, 1: 17}),
        "Foot Fungal Nails": patient({0: 95, 1: 5}),
        "Leg Score": patient({0: 30, 1: 30, 2: 20, 3: 12, 4: 5, 6: 3}),
        "No Offloading": flag(0.12),
        "Offloading: Therapeutic Footwear": flag(0.43),
        "Offloading: Scotcast Boot or RCW": flag(0.21, -0.08),
        "Offloading: Half Shoes or Sandals": flag(0.14),
        "Offloading: Total Contact Cast": flag(0.02),
        "Offloading: Crutches, Walkers or Wheelchairs": flag(0.18),
        "Offloading Score": _choice(rng, {0: 13, 1: 76, 2: 11}, n),
        "Healing Phase": np.array([fine[int(p)][rng.integers(3)] for p in phase], dtype=object),
        "Phase Confidence (%)": rng.choice([30, 50, 60, 70, 80, 90, 100], n),
        "Healing Phase Abs": np.array([CLASSES[int(p)] for p in phase], dtype=object),
    }
    frame = pd.DataFrame({c: pd.Series(cols[c], dtype=object) for c in METADATA_COLUMNS})
    missing = MISSING_RATES
    for column, rate in missing.items():
        frame.loc[rng.random(n) < rate, column] = None
    return frame


# The planted leak (`planted_leak=True`, off by default): the dressing follows the label, as
# a clinician's choice after assessing the wound would. It exists to test the leakage radar.
LEAK_DRESSING = {0: "vac", 1: "Betadine", 2: "0"}  # I, P, R
LEAK_STRENGTH = 0.85


def _plant_leak(rng: np.random.Generator, meta: pd.DataFrame, grouped: dict[str, str]) -> None:
    phase = meta["Healing Phase Abs"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    follows = rng.random(len(meta)) < LEAK_STRENGTH
    dressing = np.where(follows, [LEAK_DRESSING[int(p)] for p in phase], meta["Dressing"])
    meta["Dressing"] = dressing
    meta["Dressing Grouped"] = [grouped.get(d) if isinstance(d, str) else None for d in dressing]


def _repeat_keys(rng: np.random.Generator, meta: pd.DataFrame, pairs: int) -> pd.DataFrame:
    """Rows that share a sample key with another row but differ, as in the clinic's file.

    Each copy is a separate visit recorded under the same appointment number: 7 to 56 days
    later, with other temperatures and exudate, and the same label.
    """
    if pairs <= 0:
        return meta
    picked = rng.choice(len(meta), size=min(pairs, len(meta)), replace=False)
    copies = meta.iloc[picked].copy()
    shift = rng.integers(7, 57, len(copies))
    for column in ("Appt Days", "Onset (Days)"):
        copies[column] = [
            None if v is None else float(v) + d for v, d in zip(copies[column], shift, strict=True)
        ]
    for column in (
        "Wound Centre Temperature (°C)",
        "Peri-Ulcer Temperature (°C)",
        "Intact Skin Temperature (°C)",
    ):
        copies[column] = [
            None if v is None else round(float(v) + rng.normal(0, 1.0), 1) for v in copies[column]
        ]
    copies["Exudate Amount (None:0,Minor,Medium,Severe:3)"] = rng.choice([0, 1, 2], len(copies))
    copies.index = copies.index + 0.5  # right after the row it repeats
    return pd.concat([meta, copies]).sort_index(kind="stable").reset_index(drop=True)


def generate_demo(
    root: Path,
    patients: int = DEFAULT_PATIENTS,
    seed: int = 0,
    metadata_file: str = DEFAULT_METADATA_FILE,
    planted_leak: bool = False,
    repeated_keys: int = 3,
    exact_duplicates: int = 0,
    images: bool = True,
) -> DemoSummary:
    """Write a demo dataset into `root` (created private; must not exist or be empty).

    Like the clinic's file, `repeated_keys` pairs of rows share a sample key and differ; the
    real file has no exact duplicate rows, so `exact_duplicates` is 0 unless asked for.
    `planted_leak` makes the dressing follow the label (see `_plant_leak`). Without
    `images`, the same metadata file (its draws come before the images' and apart from
    them) and box files with their header only, in a fraction of the time.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    visits = _visits(rng, patients)
    meta = _metadata(rng, visits)
    if planted_leak:
        _plant_leak(np.random.default_rng([seed, 1]), meta, DRESSING_GROUP)
    private_dir(root)
    for folder in DEFAULT_FOLDERS.values():
        private_dir(root / folder)
    box_rows: dict[str, list[list[object]]] = {"depth": [], "thermal": []}
    counter = 1
    n_images = 0
    skin = {p: float(rng.normal(120, 15)) for p in visits["Patient#"].unique()}
    by_visit = visits.groupby(["Patient#", "Appt#"], sort=True)
    for key, group in by_visit if images else ():
        pid, appt = (int(k) for k in key)  # type: ignore[call-overload]
        if rng.random() < 0.12:  # some visits have no images
            continue
        for _, wound in group.iterrows():
            dfu, phase = int(wound["DFU#"]), int(wound["phase"])
            signal = {m: phase + rng.normal(0, s) for m, s in demo_images.IMAGE_NOISE.items()}
            others = group[group["DFU#"] != dfu]
            shots = [("B", "M")] + [
                (d, a) for d in "BA" for a in "LMR" if (d, a) != ("B", "M") and rng.random() < 0.2
            ]
            for debri, angle in shots:
                for camera, spec in CAMERAS.items():
                    view = "W" if rng.random() < 0.8 else "Z"
                    name = ImageName(
                        counter, pid, appt, dfu, debri, spec.letter, angle, view
                    ).filename()
                    counter += 1
                    own = demo_images.random_box(rng, camera, [])
                    boxes = [(dfu, own)]
                    if len(others) and rng.random() < 0.5:  # the other wound is in view too
                        boxes.append(
                            (
                                int(others.iloc[0]["DFU#"]),
                                demo_images.random_box(rng, camera, [own]),
                            )
                        )
                    frames = demo_images.frames(
                        rng, camera, signal, [b for _, b in boxes], skin[pid]
                    )
                    for modality, arr in frames.items():
                        Image.fromarray(arr).save(
                            root / DEFAULT_FOLDERS[modality] / name, compress_level=1
                        )
                        n_images += 1
                    for number, (box_dfu, (x0, y0, x1, y1)) in enumerate(boxes, start=1):
                        # Depth ids are zero-padded, thermal ones not (as in the real files).
                        p_txt, a_txt = (
                            (f"{pid:03d}", f"{appt:02d}")
                            if camera == "depth"
                            else (str(pid), str(appt))
                        )
                        box_rows[camera].append(
                            [
                                name,
                                p_txt,
                                a_txt,
                                box_dfu,
                                debri,
                                camera[0].upper(),
                                angle + view,
                                number,
                                x0,
                                y0,
                                x1,
                                y1,
                            ]
                        )
    meta = _repeat_keys(np.random.default_rng([seed, 2]), meta, repeated_keys)
    if exact_duplicates:
        dups = meta.sample(n=min(exact_duplicates, len(meta)), random_state=seed)
        meta = pd.concat([meta, dups]).sort_index(kind="stable").reset_index(drop=True)
    meta.to_csv(root / metadata_file, index=False, encoding="utf-8-sig")
    for camera, rows in box_rows.items():
        pd.DataFrame(rows, columns=list(BOX_COLUMNS)).to_csv(
            root / DEFAULT_BOX_FILES[camera], index=False
        )
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return DemoSummary(root, patients, len(meta), n_images, size, time.perf_counter() - start)


#: Written last into a finished demo dataset; a folder without it is incomplete.
COMPLETE_MARKER = ".complete"


def write_demo(
    target: Path,
    patients: int = DEFAULT_PATIENTS,
    seed: int = 0,
    metadata_file: str = DEFAULT_METADATA_FILE,
    **options: Any,
) -> DemoSummary:
    """Generate into a private temporary sibling folder (one per writer), write the
    completeness marker last, then rename: never a half-written dataset, and concurrent
    writers never touch each other's files. Files are 0600, folders 0700."""
    private_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        summary = generate_demo(tmp, patients, seed, metadata_file, **options)
        marker = {
            "patients": patients,
            "seed": seed,
            "rows": summary.rows,
            "images": summary.images,
        }
        (tmp / COMPLETE_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        make_private_tree(tmp)
        if target.exists() and not any(target.iterdir()):
            target.rmdir()  # an empty folder given to `demo-data`
        tmp.rename(target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DemoSummary(target, *list(summary.__dict__.values())[1:])


def demo_complete(target: Path, metadata_file: str = DEFAULT_METADATA_FILE) -> bool:
    """Whether a demo folder was finished: its marker (written last) and its metadata file."""
    return (target / COMPLETE_MARKER).is_file() and (target / metadata_file).is_file()


def demo_path(patients: int = DEFAULT_PATIENTS, seed: int = 0, planted_leak: bool = False) -> Path:
    """Where `ensure_demo_dataset` keeps the default demo of these settings (nothing created)."""
    name = f"v{DEMO_VERSION}-p{patients}-s{seed}{'-leak' if planted_leak else ''}"
    return user_cache_dir() / "demo" / name


def ensure_demo_dataset(
    patients: int = DEFAULT_PATIENTS,
    seed: int = 0,
    metadata_file: str = DEFAULT_METADATA_FILE,
    planted_leak: bool = False,
) -> Path:
    """The default demo dataset in the user's cache, generated on first use.

    Safe under concurrency: one process generates while the others wait on a lock and then
    reuse its result. A folder without the completeness marker (an older version's, or one
    damaged by hand) is set aside and generated again; temporary folders of killed writers
    are removed.
    """
    target = demo_path(patients, seed, planted_leak)
    if demo_complete(target, metadata_file):
        return target
    base = private_dir(target.parent)
    with _locked(base / f".{target.name}.lock"):
        if demo_complete(target, metadata_file):
            return target  # another process finished it while we waited
        for stale in base.glob(f".{target.name}.*.partial"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed writer (we hold the lock)
        if target.exists():
            shutil.rmtree(target)  # incomplete or damaged: ours to rebuild
        write_demo(target, patients, seed, metadata_file, planted_leak=planted_leak)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the block (released if the process dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
