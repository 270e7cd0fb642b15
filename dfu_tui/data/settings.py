"""The settings the data layer reads: where the dataset is, the demo, the feature choices.

`dfu_tui.config` reads them from TOML as part of a whole `Config`; loading a dataset needs
only a `DatasetSpec` (`Config.dataset`), so nothing under `dfu_tui.data` imports the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dfu_tui.data.schema import DEFAULT_BOX_FILES, DEFAULT_FOLDERS, DEFAULT_METADATA_FILE


def limited(
    default: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A numeric setting with its allowed range declared beside it (checked when a config
    loads, named in the error): from `low` to `high` (either may be left open-ended), each
    end included unless `low_open` / `high_open`."""
    return field(default=default, metadata={"range": (low, high, low_open, high_open)})


# The clinic's data has 270 patients; a demo beyond this (about 0.7 GB of images) is a typo.
MAX_DEMO_PATIENTS = 2000


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset is and how to read it."""

    root: str = "demo"
    metadata_file: str = DEFAULT_METADATA_FILE
    label_column: str = "Healing Phase Abs"
    patient_column: str = "Patient#"
    folders: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FOLDERS))
    box_files: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BOX_FILES))
    exclude_columns: list[str] = field(default_factory=list)
    use_free_text: bool = False
    image_size: int = limited(64, 16, 512)
    cache_dir: str = ""


@dataclass(frozen=True)
class FeaturesConfig:
    """Which metadata columns the metadata branch uses, and what is compared."""

    exclude: list[str] = field(default_factory=list)  # column names or group names
    history: bool = False  # add per-wound visit-history columns
    compare: str = ""  # a group: also train the metadata branch without it, fold by fold


@dataclass(frozen=True)
class DemoConfig:
    """The built-in synthetic dataset used when `data.root = "demo"`."""

    patients: int = limited(160, 6, MAX_DEMO_PATIENTS)
    seed: int = 0
    planted_leak: bool = False  # the dressing follows the label (a test of the radar)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything loading a dataset needs: data settings, the demo, the feature choices,
    the config file's name (for messages) and the image modalities chosen."""

    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    source: str = "<defaults>"
    image_modalities: list[str] = field(default_factory=list)
