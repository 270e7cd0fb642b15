"""Checking a built config: every range and option (`_check_limits`), then what no single
field can say (weights that sum to 1, a comparison group that exists, a batch that fits)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import shlex
import shutil
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from dfu_tui.config.model import (
    BACKBONES,
    EXTRA_BACKBONES,
    FUSION_STRATEGIES,
    MAX_COMPARE,
    RAY_ADDRESS,
    WEIGHT_SUM_TOLERANCE,
    Config,
    _hints,
    expand_weights,
)
from dfu_tui.data.schema import (
    CAMERAS,
    FEATURE_GROUPS,
    IMAGE_MODALITIES,
    METADATA,
    MODALITIES,
)


def _outside_dataset(value: str) -> str:
    """Why a file or folder setting does not name a place inside the dataset folder, or ""."""
    path = Path(value)
    if not value.strip():
        return "empty"
    if path.is_absolute() or value.startswith("~"):
        return "an absolute path"
    if ".." in path.parts:
        return "'..' leaves the dataset folder"
    return ""


def _check_weights(key: str, weights: Mapping[str, float], cfg: Config, source: str) -> list[str]:
    """The problems of one weight table: unknown or negative entries, a sum other than 1, a
    chosen modality without a weight."""
    out: list[str] = []
    for name, weight in weights.items():
        if name != "image" and name not in MODALITIES:
            near = difflib.get_close_matches(name, [*MODALITIES, "image"], n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            out.append(f"{source}: {key}.{name}: unknown modality{hint}")
        if weight < 0:
            out.append(f"{source}: {key}.{name}: must be >= 0, got {weight:g}")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        out.append(f"{source}: {key}: must sum to 1, got {total:g}")
    expanded = expand_weights(weights, cfg.image_modalities)
    for m in cfg.modalities.use:
        if m in MODALITIES and m not in expanded:
            out.append(f"{source}: {key}: no weight for '{m}' (give one, or an 'image' weight)")
    return out


MAX_TREES = 100_000
MAX_BATCH_BYTES = 4 * 2**30  # one batch's float32 input; a larger one cannot fit a GPU


def _span(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """`>= 2`, `between 1 and 100`, `in (0, 0.5)`: how an allowed range reads."""

    def text(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if high is None:
        return f"{'>' if low_open else '>='} {text(low or 0)}"
    if low is None:
        return f"{'<' if high_open else '<='} {text(high)}"
    if not low_open and not high_open and float(low).is_integer() and float(high).is_integer():
        return f"between {text(low)} and {text(high)}"
    return f"in {'(' if low_open else '['}{text(low)}, {text(high)}{')' if high_open else ']'}"


def _check_limits(cfg: Config, source: str) -> list[str]:
    """Every setting declared with `limited`: a finite number inside its range; every
    option (a `Literal` field): one of its values."""
    out = []
    for section in dataclasses.fields(cfg):
        value: Any = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        hints = _hints(typing.cast(type, type(value)))
        for f in dataclasses.fields(value):
            key, x = f"{section.name}.{f.name}", getattr(value, f.name)
            options = get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is Literal else ()
            if options and x not in options:
                near = difflib.get_close_matches(str(x), options, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                out.append(f"{source}: {key}: '{x}' is not one of {', '.join(options)}{hint}")
            if "range" not in f.metadata:
                continue
            low, high, low_open, high_open = f.metadata["range"]
            number = isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            inside = number and (
                (low is None or (low < x if low_open else low <= x))
                and (high is None or (x < high if high_open else x <= high))
            )
            if not inside:
                span = _span(low, high, low_open, high_open)
                out.append(f"{source}: {key}: must be {span}, got {x!r}")
    return out


def check_config(cfg: Config, source: str) -> list[str]:
    """The checks that relate values to each other or to allowed sets."""
    out: list[str] = _check_limits(cfg, source)

    def bad(key: str, message: str) -> None:
        out.append(f"{source}: {key}: {message}")

    ex = cfg.executor
    if ex.address and not RAY_ADDRESS.fullmatch(ex.address):
        bad(
            "executor.address",
            f"expected auto, host:port or ray://host:port, got {ex.address!r}",
        )
    if cfg.notify.command.strip():
        try:
            program = shlex.split(cfg.notify.command)[0]
        except (ValueError, IndexError) as exc:
            bad("notify.command", f"cannot split it into words ({exc})")
        else:
            if shutil.which(program) is None:
                bad(
                    "notify.command",
                    f"{program!r}: no such program (give a path or a name on PATH)",
                )
    use = cfg.modalities.use
    if not use:
        bad(
            "modalities.use", f"no modality chosen; expected one or more of {', '.join(MODALITIES)}"
        )
    for m in use:
        if m not in MODALITIES:
            near = difflib.get_close_matches(m, MODALITIES, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            bad("modalities.use", f"unknown modality '{m}'{hint}")
    if len(set(use)) != len(use):
        bad("modalities.use", "a modality is listed twice")

    fusion = cfg.fusion
    if fusion.strategy not in FUSION_STRATEGIES:
        bad("fusion.strategy", f"'{fusion.strategy}' is not one of {', '.join(FUSION_STRATEGIES)}")
    out += _check_weights("fusion.weights", fusion.weights, cfg, source)
    if len(fusion.compare) > MAX_COMPARE:
        bad("fusion.compare", f"at most {MAX_COMPARE} fusions, got {len(fusion.compare)}")
    for i, item in enumerate(fusion.compare[:MAX_COMPARE]):
        if isinstance(item, str):
            if item not in FUSION_STRATEGIES:
                bad(
                    f"fusion.compare[{i}]",
                    f"'{item}' is not one of {', '.join(FUSION_STRATEGIES)} (or a weight table)",
                )
        else:
            out += _check_weights(f"fusion.compare[{i}]", item, cfg, source)

    for m in cfg.data.folders:
        if m not in IMAGE_MODALITIES:
            bad(f"data.folders.{m}", f"not an image modality ({', '.join(IMAGE_MODALITIES)})")
    for cam in cfg.data.box_files:
        if cam not in CAMERAS:
            bad(f"data.box_files.{cam}", f"expected a camera: {' or '.join(map(repr, CAMERAS))}")
    if not cfg.data.root.strip():
        bad("data.root", "empty; expected demo or a dataset folder")
    for key in ("label_column", "patient_column"):
        if not str(getattr(cfg.data, key)).strip():
            bad(f"data.{key}", "empty; expected a column name of the metadata CSV")
    inside = {
        "data.metadata_file": cfg.data.metadata_file,
        **{f"data.folders.{m}": v for m, v in cfg.data.folders.items()},
        **{f"data.box_files.{c}": v for c, v in cfg.data.box_files.items()},
    }
    for key, value in inside.items():
        problem = _outside_dataset(value)
        if problem:
            bad(key, f"{problem}, got {value!r}; expected a path inside the dataset folder")
    if cfg.data.root == "demo" and Path(cfg.data.metadata_file).name != cfg.data.metadata_file:
        bad(
            "data.metadata_file",
            f"the demo writes its metadata CSV at the top of its folder; expected a file "
            f"name, got {cfg.data.metadata_file!r}",
        )

    mm = cfg.metadata_model
    if not 1 <= mm.n_estimators <= MAX_TREES:
        bad(
            "metadata_model.n_estimators",
            f"must be in 1..{MAX_TREES:,} (more never ends on a lab server), "
            f"got {mm.n_estimators:,}",
        )
    if mm.n_jobs == 0 or mm.n_jobs < -1:
        bad("metadata_model.n_jobs", f"must be -1 (all cores) or >= 1, got {mm.n_jobs}")

    im = cfg.image_model
    if im.backbone not in BACKBONES and im.backbone not in EXTRA_BACKBONES:
        bad("image_model.backbone", f"'{im.backbone}' is not one of {', '.join(BACKBONES)}")
    if im.weights == "imagenet":
        if im.backbone == "small_cnn":
            bad(
                "image_model.weights",
                "'imagenet' needs a Keras application backbone "
                f"({', '.join(BACKBONES[1:])}); small_cnn has no pretrained weights",
            )
    elif im.weights != "none" and not Path(im.weights).expanduser().is_file():
        bad("image_model.weights", f"weights file not found: {im.weights}")
    if im.batch_size >= 1 and im.batch_size * cfg.data.image_size**2 * 3 * 4 > MAX_BATCH_BYTES:
        bad(
            "image_model.batch_size",
            f"{im.batch_size} crops of {cfg.data.image_size} px is "
            f"{im.batch_size * cfg.data.image_size**2 * 12 / 2**30:.1f} GiB of input per "
            f"batch, above the {MAX_BATCH_BYTES / 2**30:.0f} GiB limit",
        )
    _check_features(cfg, bad)
    return out


def _check_features(cfg: Config, bad: Callable[[str, str], None]) -> None:
    """Feature groups and radar thresholds; column names are checked against the data later."""
    features = cfg.features
    compare = features.compare
    if compare:
        if compare not in FEATURE_GROUPS:
            near = difflib.get_close_matches(compare, list(FEATURE_GROUPS), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            bad(
                "features.compare",
                f"unknown group '{compare}'{hint}; expected one of {', '.join(FEATURE_GROUPS)}",
            )
        elif compare in features.exclude:
            bad("features.compare", f"'{compare}' is already excluded by features.exclude")
        elif compare == "history" and not features.history:
            bad("features.compare", "'history' needs features.history = true")
        if METADATA not in cfg.modalities.use:
            bad("features.compare", "needs the metadata modality in modalities.use")
