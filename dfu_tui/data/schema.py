"""The clinic's dataset format: column names, modalities, label-derived columns, file names."""

from __future__ import annotations

from dataclasses import dataclass

# The metadata CSV header, in order (data-format.md).
METADATA_COLUMNS: tuple[str, ...] = (
    "ID",
    "Patient#",
    "Age",
    "Sex (F:0, M:1)",
    "Weight (Kg)",
    "Height (cm)",
    "Smoking",
    "Alcohol Consumption",
    "Habits Score",
    "Type of Diabetes",
    "Heart Conditions",
    "Cancer History",
    "Sensory Peripheral",
    "Clinical Score",
    "Number of DFUs",
    "DFU#",
    "Side (Left:0, Right:1)",
    "Foot Aspect",
    "Location",
    "Location Grouped (Hallux:1,Toes,Middle,Heel,Ankle:5)",
    "Onset (Days)",
    "No Toes Deformities",
    "Bunion",
    "Claw",
    "Hammer",
    "Charcot Arthropathy",
    "Flat (Pes Planus) Arch",
    "Abnormally High Arch",
    "No Arch Deformities",
    "Foot Score",
    "Appt#",
    "Appt Days",
    "Wound Centre Temperature (°C)",
    "Peri-Ulcer Temperature (°C)",
    "Intact Skin Temperature (°C)",
    "Wound Centre Temperature Normalized (°C)",
    "Peri-Ulcer Temperature Normalized (°C)",
    "Pain Level",
    "Type of Pain",
    "Type of Pain Grouped",
    "Type of Pain2",
    "Type of Pain_Grouped2",
    "Wound Tunneling",
    "Exudate Amount (None:0,Minor,Medium,Severe:3)",
    "Exudate Appearance (Serous:1,Haemoserous,Bloody,Thick:4)",
    "Odor",
    "No Peri-ulcer Conditions (False:0, True:1)",
    "Erythema at Peri-ulcer",
    "Edema at Peri-ulcer",
    "Pale Colour at Peri-ulcer",
    "Maceration at Peri-ulcer",
    "Wound Score",
    "Dressing",
    "Dressing Grouped",
    "No Foot Abnormalities",
    "Foot Hair Loss",
    "Foot Dry Skin",
    "Foot Fissure Cracks",
    "Foot Callus",
    "Thickened Toenail",
    "Foot Fungal Nails",
    "Leg Score",
    "No Offloading",
    "Offloading: Therapeutic Footwear",
    "Offloading: Scotcast Boot or RCW",
    "Offloading: Half Shoes or Sandals",
    "Offloading: Total Contact Cast",
    "Offloading: Crutches, Walkers or Wheelchairs",
    "Offloading Score",
    "Healing Phase",
    "Phase Confidence (%)",
    "Healing Phase Abs",
)

# Text-valued columns; everything else in the header is numeric.
TEXT_COLUMNS: frozenset[str] = frozenset(
    {
        "ID",
        "Sex (F:0, M:1)",
        "Side (Left:0, Right:1)",
        "Foot Aspect",
        "Location",
        "Location Grouped (Hallux:1,Toes,Middle,Heel,Ankle:5)",
        "Type of Pain",
        "Type of Pain Grouped",
        "Type of Pain2",
        "Type of Pain_Grouped2",
        "Exudate Appearance (Serous:1,Haemoserous,Bloody,Thick:4)",
        "Odor",
        "Dressing",
        "Dressing Grouped",
        "Healing Phase",
        "Healing Phase Abs",
    }
)

# Free-text columns with many values; their grouped versions are used instead by default.
FREE_TEXT_COLUMNS: tuple[str, ...] = ("Location", "Type of Pain", "Type of Pain2", "Dressing")

# The label, columns derived from it, and identifiers: never features.
LABEL_DERIVED_COLUMNS: tuple[str, ...] = ("Healing Phase", "Phase Confidence (%)")
ID_COLUMNS: tuple[str, ...] = ("ID",)

CLASSES: tuple[str, ...] = ("I", "P", "R")

SAMPLE_KEY_COLUMNS: tuple[str, str, str] = ("Patient#", "Appt#", "DFU#")

METADATA = "metadata"


@dataclass(frozen=True)
class Camera:
    """One camera of the clinic: the letter its image file names carry (`..{B|A}{letter}..`)
    and its bounding-box file."""

    name: str
    letter: str
    box_file: str


@dataclass(frozen=True)
class ImageModality:
    """One image branch: the camera that takes it and its folder in a dataset."""

    name: str
    camera: str
    folder: str


# The one table of cameras and image modalities: file-name parsing, the config check, the
# dataset loader and the demo read it (a new camera: a row in each, and how the demo draws
# it in `demo.py`).
CAMERAS: dict[str, Camera] = {
    c.name: c
    for c in (
        Camera("depth", "D", "bounding_box_depth.csv"),
        Camera("thermal", "T", "bounding_box_thermal.csv"),
    )
}
IMAGE_MODALITY_TABLE: tuple[ImageModality, ...] = (
    ImageModality("depth_rgb", "depth", "Depth_RGB"),
    ImageModality("depth_map", "depth", "Depth_Map_IMG"),
    ImageModality("thermal_rgb", "thermal", "Thermal_RGB"),
    ImageModality("thermal_map", "thermal", "Thermal_Map_IMG"),
)
IMAGE_MODALITIES: tuple[str, ...] = tuple(m.name for m in IMAGE_MODALITY_TABLE)
MODALITIES: tuple[str, ...] = (METADATA, *IMAGE_MODALITIES)
# Which camera (and so which bounding-box file) each image modality comes from.
CAMERA_OF: dict[str, str] = {m.name: m.camera for m in IMAGE_MODALITY_TABLE}
DEFAULT_FOLDERS: dict[str, str] = {m.name: m.folder for m in IMAGE_MODALITY_TABLE}
DEFAULT_BOX_FILES: dict[str, str] = {c.name: c.box_file for c in CAMERAS.values()}
DEFAULT_METADATA_FILE = "DataMaster_Processed_V12_WithMissing.csv"

BOX_COLUMNS: tuple[str, ...] = (
    "Filename",
    "Patient#",
    "Appt#",
    "DFU#",
    "DebriStat",
    "Camera",
    "Angle",
    "Bounding Box Number",
    "Xmin",
    "Ymin",
    "Xmax",
    "Ymax",
)

# Named groups of metadata columns, for `features.exclude` and `features.compare`. A column
# may sit in more than one group. `history` holds the derived visit-history columns.
TREATMENT_COLUMNS: tuple[str, ...] = (
    "Dressing",
    "Dressing Grouped",
    "No Offloading",
    "Offloading: Therapeutic Footwear",
    "Offloading: Scotcast Boot or RCW",
    "Offloading: Half Shoes or Sandals",
    "Offloading: Total Contact Cast",
    "Offloading: Crutches, Walkers or Wheelchairs",
    "Offloading Score",
)
VISIT_INDEX = "Visit index (history)"
DAYS_SINCE_PREVIOUS = "Days since previous visit (history)"
TIMING_COLUMNS: tuple[str, ...] = (
    "Appt#",
    "Appt Days",
    "Onset (Days)",
    VISIT_INDEX,
    DAYS_SINCE_PREVIOUS,
)
IDENTITY_COLUMNS: tuple[str, ...] = ("ID", "Patient#", "DFU#")

# Numeric measurements taken at each visit: their previous value and change are the
# visit-history features (`features.history = true`). Treatment columns are left out.
HISTORY_MEASUREMENTS: tuple[str, ...] = (
    "Wound Centre Temperature (°C)",
    "Peri-Ulcer Temperature (°C)",
    "Intact Skin Temperature (°C)",
    "Wound Centre Temperature Normalized (°C)",
    "Peri-Ulcer Temperature Normalized (°C)",
    "Pain Level",
    "Wound Tunneling",
    "Exudate Amount (None:0,Minor,Medium,Severe:3)",
    "No Peri-ulcer Conditions (False:0, True:1)",
    "Erythema at Peri-ulcer",
    "Edema at Peri-ulcer",
    "Pale Colour at Peri-ulcer",
    "Maceration at Peri-ulcer",
    "Wound Score",
)


def previous_column(column: str) -> str:
    """The visit-history column holding `column` at the wound's previous visit."""
    return f"Previous {column} (history)"


def change_column(column: str) -> str:
    """The visit-history column holding the change of `column` since the previous visit."""
    return f"Change in {column} (history)"


HISTORY_COLUMNS: tuple[str, ...] = (
    VISIT_INDEX,
    DAYS_SINCE_PREVIOUS,
    *(previous_column(c) for c in HISTORY_MEASUREMENTS),
    *(change_column(c) for c in HISTORY_MEASUREMENTS),
)

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "treatment": TREATMENT_COLUMNS,
    "timing": TIMING_COLUMNS,
    "identity": IDENTITY_COLUMNS,
    "free_text": FREE_TEXT_COLUMNS,
    "history": HISTORY_COLUMNS,
}
# What each group is, for help texts and the launch form.
GROUP_HELP: dict[str, str] = {
    "treatment": "dressing and offloading: chosen by the clinician after assessing the wound",
    "timing": "appointment number, days since the first visit, onset",
    "identity": "wound number (ID and Patient# are never features)",
    "free_text": "free-text columns (their grouped versions stay)",
    "history": "derived visit-history columns (with features.history = true)",
}

# `features.compare = GROUP` adds a second metadata branch trained without GROUP.
WITHOUT_PREFIX = "metadata_without_"


def without_branch(group: str) -> str:
    """The name of the metadata branch trained without a feature group."""
    return f"{WITHOUT_PREFIX}{group}"


def is_metadata_branch(branch: str) -> bool:
    """Whether a branch is the metadata forest (with all its features or without a group)."""
    return branch == METADATA or branch.startswith(WITHOUT_PREFIX)
