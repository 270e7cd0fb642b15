"""TOML configuration loaded into frozen, typed objects; every problem names the file and key."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Literal, get_args

import tomli_w

from dfu_tui.data.schema import (
    CAMERAS,
    FEATURE_GROUPS,
    IMAGE_MODALITIES,
    METADATA,
    MODALITIES,
)
from dfu_tui.data.settings import (
    DataConfig,
    DatasetSpec,
    DemoConfig,
    FeaturesConfig,
    limited,
)
from dfu_tui.errors import InputError


@dataclass(frozen=True)
class FusionSpec:
    """A fusion strategy as the config, the launch form, the engine and the tables know it.
    Its estimator is registered under the same name in `engine/fusion.py` (a test checks
    that every spec has one and every estimator a spec): adding a strategy is an entry here
    and a class there."""

    about: str  # one line, for the launch form and `validate`
    learns_from: str = "nothing"  # "nothing", "training fold" or "inner out-of-fold rows"
    uses_weights: bool = True  # the configured weights shape it (else: two such are the same)
    shows_weights: bool = True  # what it learned reads as one weight per branch

    @property
    def needs_oof(self) -> bool:
        """Fitted on inner out-of-fold probabilities (its branches train inner folds)."""
        return self.learns_from == "inner out-of-fold rows"


FUSIONS: dict[str, FusionSpec] = {
    "fixed": FusionSpec("weighted mean of probabilities with the configured weights"),
    "learned_alpha": FusionSpec(
        "per-sample metadata weight from a logistic gate (the research code's V1)",
        learns_from="training fold",
        uses_weights=False,
    ),
    "tuned": FusionSpec(
        "fixed weights chosen by kappa on inner out-of-fold rows",
        learns_from="inner out-of-fold rows",
    ),
    "stacked": FusionSpec(
        "logistic regression on the branch probabilities",
        learns_from="inner out-of-fold rows",
        uses_weights=False,
        shows_weights=False,
    ),
    "geometric": FusionSpec(
        "weighted geometric mean of probabilities with the configured weights (renormalised)"
    ),
}
FUSION_STRATEGIES = tuple(FUSIONS)
NEEDS_OOF = tuple(name for name, spec in FUSIONS.items() if spec.needs_oof)
BACKBONES = ("small_cnn", "EfficientNetB0", "MobileNetV3Small", "DenseNet121")
#: Image branches registered by code beside the shipped backbones: name -> "module:function"
#: training one fold (the signature of `engine.image_branch.train_image_branch`). The tests
#: register a deterministic stand-in here (`tests/standin/sitecustomize.py`) for tests whose
#: subject is process handling; the launch form offers `BACKBONES` only, and a config file
#: cannot add an entry.
EXTRA_BACKBONES: dict[str, str] = {}
# Options are Literals: a value outside one is named with the allowed ones when a config loads
Loss = Literal["weighted_ce", "focal"]
CVStrategy = Literal["grouped", "temporal"]
MaxFeatures = Literal["sqrt", "log2", "none"]
ClassWeight = Literal["balanced", "none"]
CriteriaMetric = Literal["quadratic_kappa", "kappa"]
ExecutorKind = Literal["local", "ray"]
LOSSES: tuple[str, ...] = get_args(Loss)
CV_STRATEGIES: tuple[str, ...] = get_args(CVStrategy)
MAX_FEATURES: tuple[str, ...] = get_args(MaxFeatures)
MAX_INNER_FOLDS = 10
MAX_COMPARE = 20  # fusions scored beside the configured one (each is fitted on every fold)
MAX_REPEATS = 100  # repeated CV is 5 or 10 repeats; a million is a typo (and 5e6 tasks)
CRITERIA_METRICS: tuple[str, ...] = get_args(CriteriaMetric)
EXECUTORS: tuple[str, ...] = get_args(ExecutorKind)
# what `ray.init(address=...)` takes: a running cluster on this machine, a new local
# instance, a cluster's GCS (host:port) or a Ray client server (ray://host:port)
RAY_ADDRESS = re.compile(r"auto|local|(ray://)?[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}")
WEIGHT_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RadarConfig:
    """The leakage radar: permutation importance and single-feature kappa per fold."""

    enabled: bool = True
    repeats: int = limited(5, 1)  # permutation repeats per column
    top: int = limited(5, 1)  # treatment columns ranked this high are flagged
    dominance_ratio: float = limited(2.0, 1)  # a column this many times the runner-up dominates
    min_importance: float = 0.03  # ... when its kappa drop is at least this
    min_single_kappa: float = 0.15  # ... or its single-feature kappa at least this
    forest_seeds: int = limited(
        5, 1, 50
    )  # with/without comparisons: each side averaged over this many forests


@dataclass(frozen=True)
class ModalitiesConfig:
    """Which modalities to use, and whether to search over all their combinations."""

    use: list[str] = field(default_factory=lambda: [METADATA, "thermal_map"])
    search: bool = False


@dataclass(frozen=True)
class FusionConfig:
    """How branch probabilities are combined."""

    strategy: str = "fixed"
    weights: dict[str, float] = field(default_factory=lambda: {METADATA: 0.70, "image": 0.30})
    # more fusions of the same branch predictions, scored on the same rows beside `strategy`
    # (the reference): strategy names, and weight tables for more fixed weightings
    compare: list[str | dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class FusionVariant:
    """One fusion a run scores: a strategy, with its own weights for `fixed` and `tuned`
    (tuned starts from them), under a name shown everywhere (`fixed`, `fixed 0.50/0.50`)."""

    name: str
    strategy: str
    weights: dict[str, float]


@dataclass(frozen=True)
class CVConfig:
    """Patient-grouped cross-validation, repeated with different seeds, and an optional
    temporal hold-out of the latest-enrolled patients."""

    folds: int = limited(3, 2)
    seed: int = 42
    inner_folds: int = limited(3, 2, MAX_INNER_FOLDS)
    repeats: int = limited(1, 1, MAX_REPEATS)  # differently seeded K-fold splits
    strategy: CVStrategy = "grouped"  # or "temporal": hold out the latest patients after CV
    # temporal: the share of patients held out
    holdout_fraction: float = limited(0.2, 0, 0.5, low_open=True, high_open=True)
    order_column: str = ""  # temporal: enrolment order column ("" = the patient column)


@dataclass(frozen=True)
class MetadataModelConfig:
    """The Random Forest of the metadata branch."""

    n_estimators: int = 300
    max_depth: int = limited(0, 0)  # 0: unlimited
    min_samples_leaf: int = limited(1, 1)
    max_features: MaxFeatures = "sqrt"
    class_weight: ClassWeight = "balanced"
    n_jobs: int = -1


@dataclass(frozen=True)
class ImageModelConfig:
    """The CNN of each image branch."""

    backbone: str = "small_cnn"
    weights: str = "none"  # "none" or the path of a local weights file
    epochs: int = limited(20, 1)
    batch_size: int = limited(32, 1)
    learning_rate: float = limited(1e-3, 0, 1, low_open=True, high_open=True)
    patience: int = 5
    loss: Loss = "weighted_ce"
    augment: bool = True
    inner_val_fraction: float = limited(0.2, 0, 0.5, low_open=True, high_open=True)
    # TensorFlow's threads per image task (intra-op; inter-op 1), fixed by the config so
    # `--jobs` never changes the trained model; 0: what `--jobs` leaves per task (as before
    # 0.5: the model then depends on --jobs)
    threads: int = limited(1, 0, 256)
    # TensorFlow's deterministic ops: the same config and seed give the same model (on a CPU
    # at little cost; on a GPU some kernels are slower)
    deterministic: bool = True
    mixed_precision: bool = False  # float16 compute on a GPU (ignored without one)


@dataclass(frozen=True)
class CollapseConfig:
    """Thresholds of the collapse and health rules (calibrated on the cases in
    tests/unit/test_rules.py), each with its allowed range."""

    # one class this share of all predictions: collapse (below 1/3 every run would be)
    absolute_cap: float = limited(0.90, 0.34, 1.0)
    # over-predicted: predicted share above true share + this
    share_margin: float = limited(0.10, 0.0, 1.0, low_open=True)
    # predicted/true entropy below this at chance kappa: collapse
    entropy_ratio: float = limited(0.80, 0.0, 1.0, low_open=True)
    chance_kappa: float = limited(0.05, -1.0, 1.0)  # unweighted kappa at or below: chance
    # train minus validation kappa above this: over-fitted (a fold's `overfit_gap` flag)
    overfit_gap: float = limited(0.20, 0.0, 2.0, low_open=True)
    alpha_pinned: float = limited(0.05, 0.0, 0.5)  # learned alpha this near 0 or 1: pinned
    min_support: int = limited(5, 1, 1_000_000)  # a never-predicted class with this many: collapse
    epoch_min_samples: int = limited(30, 1, 1_000_000)  # epoch flags need this large a split
    epoch_persist: int = limited(5, 1, 100_000)  # ... and the rule to hold this many epochs
    confidence: float = limited(0.95, 0.5, 1.0)  # epoch flags: over-prediction's Wilson bound


@dataclass(frozen=True)
class CriteriaConfig:
    """The success criteria of the seed note (minimum / expected / ideal), on `metric`."""

    metric: CriteriaMetric = "quadratic_kappa"  # the seed note's scale; or "kappa" (unweighted)
    # of the paired intervals behind "beats"
    confidence: float = limited(0.95, 0.5, 1, high_open=True)
    minimum_kappa: float = 0.20
    expected_kappa: float = 0.22
    ideal_kappa: float = 0.25
    # the mean train minus validation kappa the expected tier allows
    max_train_gap: float = 0.20
    # the smallest paired difference worth detecting
    min_difference: float = limited(0.05, 0, 1, low_open=True, high_open=True)
    # fewer folds in all: the verdict is exploratory (underpowered)
    min_folds: int = limited(10, 2)
    # of the minimum detectable difference shown beside each "beats"
    power: float = limited(0.80, 0.5, 1, high_open=True)


@dataclass(frozen=True)
class ExecutorConfig:
    """Where tasks run: "local" (a process per task on this machine) or "ray" (a Ray
    cluster at `address`, "auto" for the one this machine belongs to; none: a local one).
    Not part of a run's fingerprint: a run may resume on another executor."""

    kind: ExecutorKind = "local"
    address: str = ""
    cpus_per_task: float = limited(1.0, 0, low_open=True)
    # image tasks only (fractions share a GPU); metadata: none
    gpus_per_task: float = limited(1.0, 0)
    memory_gb: float = limited(0.0, 0)  # per task, 0: not reserved
    tasks_per_gpu: int = limited(1, 1)  # local executor: image tasks sharing one GPU
    max_retries: int = limited(2, 0)  # ray: a task whose node died runs again elsewhere


@dataclass(frozen=True)
class Config:
    """A whole experiment's configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    radar: RadarConfig = field(default_factory=RadarConfig)
    modalities: ModalitiesConfig = field(default_factory=ModalitiesConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    metadata_model: MetadataModelConfig = field(default_factory=MetadataModelConfig)
    image_model: ImageModelConfig = field(default_factory=ImageModelConfig)
    collapse: CollapseConfig = field(default_factory=CollapseConfig)
    criteria: CriteriaConfig = field(default_factory=CriteriaConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: str = field(default="<defaults>", compare=False)

    @property
    def dataset(self) -> DatasetSpec:
        """What loading this config's dataset needs (the data layer sees nothing else)."""
        return DatasetSpec(self.data, self.demo, self.features, self.source, self.image_modalities)

    @property
    def image_modalities(self) -> list[str]:
        """The chosen image modalities, in canonical order."""
        return [m for m in IMAGE_MODALITIES if m in self.modalities.use]

    @property
    def combinations(self) -> list[tuple[str, ...]]:
        """The modality combinations to evaluate: the chosen set, or all its non-empty subsets."""
        chosen = [m for m in MODALITIES if m in self.modalities.use]
        if not self.modalities.search:
            return [tuple(chosen)]
        return [c for k in range(1, len(chosen) + 1) for c in combinations(chosen, k)]

    def fusion_weights(self, combo: Sequence[str] | None = None) -> dict[str, float]:
        """Per-modality weights (`image` expanded), renormalised over `combo` when given."""
        expanded = expand_weights(self.fusion.weights, self.image_modalities)
        keys = list(combo) if combo is not None else [m for m in MODALITIES if m in expanded]
        return renormalised(expanded, keys)

    def fusion_variants(self) -> list[FusionVariant]:
        """The configured fusion (the reference, first) and every other one of
        `fusion.compare`, each once."""
        out = [FusionVariant(self.fusion.strategy, self.fusion.strategy, dict(self.fusion.weights))]
        for item in self.fusion.compare:
            if isinstance(item, str):
                variant = FusionVariant(item, item, dict(self.fusion.weights))
            else:
                variant = FusionVariant(weights_name(item), "fixed", dict(item))
            same = any(
                v.strategy == variant.strategy
                and (not FUSIONS[v.strategy].uses_weights or v.weights == variant.weights)
                for v in out
            )
            if not same:
                out.append(variant)
        return out

    def variant_weights(self, variant: FusionVariant, combo: Sequence[str]) -> dict[str, float]:
        """A variant's per-modality weights, renormalised over `combo`."""
        return renormalised(expand_weights(variant.weights, self.image_modalities), combo)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain data (what is saved in a run directory)."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out

    def to_toml(self) -> str:
        """The resolved configuration as TOML, loadable again with `load_config`."""
        return tomli_w.dumps(self.to_dict())

    def fingerprint(self) -> str:
        """A short hash of the settings the results depend on (not where tasks run)."""
        doc = self.to_dict()
        doc.pop("executor")
        blob = json.dumps(doc, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


#: Settings renamed since runs were first saved: old key -> new key. An old name still loads
#: (a run's config.toml, a --set, a fingerprint) as the new one.
RENAMED = {
    "collapse.max_gap": "collapse.overfit_gap",
    "criteria.max_gap": "criteria.max_train_gap",
}


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`section.key` -> value of a nested config document (weight and folder tables kept
    whole: they are one setting each); a renamed key under its new name (`RENAMED`)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and key not in ("weights", "folders", "box_files"):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[RENAMED.get(f"{prefix}{key}", f"{prefix}{key}")] = value
    return out


def renormalised(expanded: Mapping[str, float], keys: Sequence[str]) -> dict[str, float]:
    """The weights of `keys` scaled to sum to 1 (equal weights when they sum to 0)."""
    chosen = {m: expanded.get(m, 0.0) for m in keys}
    total = sum(chosen.values())
    if total <= 0:
        return {m: 1.0 / len(chosen) for m in chosen}
    return {m: w / total for m, w in chosen.items()}


def weights_name(weights: Mapping[str, float]) -> str:
    """`fixed 0.50/0.50` for a weight table (in its own order), as a fusion's name."""
    return "fixed " + "/".join(f"{float(v):.2f}" for v in weights.values())


def expand_weights(
    weights: Mapping[str, float], image_modalities: Sequence[str]
) -> dict[str, float]:
    """Split the `image` shorthand equally over the image modalities without their own weight."""
    out = {k: float(v) for k, v in weights.items() if k != "image"}
    if "image" in weights:
        rest = [m for m in image_modalities if m not in out]
        for m in rest:
            out[m] = float(weights["image"]) / len(rest)
    return out


# ---------------------------------------------------------------- loading and checking


def load_config(
    path: str | Path | None, overrides: Sequence[str] = (), raw: dict[str, Any] | None = None
) -> Config:
    """Load a TOML file (or the defaults when `path` is None) with `section.key=value` overrides.

    `raw` is the file's content as `read_toml` returned it, when the caller read it already
    (the dashboard reads files on a worker thread, then validates the form from memory).
    Raises InputError listing every problem, one line each, naming the file and key.
    """
    source = str(path) if path is not None else "<defaults>"
    if raw is not None:
        raw = copy.deepcopy(raw)
    elif path is not None:
        raw = read_toml(Path(path))
    else:
        raw = {}
    if path is not None and not raw and not overrides:
        raise InputError(
            f"{path}: the config is empty; give at least one setting "
            "(configs/default.toml shows them all), or leave the file out for the defaults"
        )
    problems: list[str] = []
    if overrides:
        raw = _with_defaults(raw)
    for item in overrides:
        _apply_override(raw, item, problems)
    cfg = dataclasses.replace(_build(Config, raw, source, "", problems), source=source)
    problems.extend(_check_semantics(cfg, source))
    if problems:
        raise InputError(problems)
    assert isinstance(cfg, Config)
    return cfg


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML as a dict; InputError naming the file when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; expected a TOML file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: TOML nested too deeply; a config is a few tables") from None
    if _depth(raw) > MAX_TOML_DEPTH:
        raise InputError(f"{path}: TOML nested deeper than {MAX_TOML_DEPTH} levels")
    return raw


#: A config is sections of keys, some a table or list deep: deeper is not a config.
MAX_TOML_DEPTH = 8


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_TOML_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill each section with its defaults, so an override changes one key of a table."""
    merged = dict(raw)
    for section, values in Config().to_dict().items():
        given = raw.get(section)
        merged[section] = {**values, **given} if isinstance(given, dict) else given or values
    return merged


def _apply_override(raw: dict[str, Any], item: str, problems: list[str]) -> None:
    key, sep, text = item.partition("=")
    parts = RENAMED.get(key.strip(), key.strip()).split(".")
    if not sep or len(parts) < 2 or not all(parts):
        problems.append(f"--set {item}: expected section.key=value")
        return
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is taken as a string
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {item}: {part} is not a section")
            return
        node = child
    node[parts[-1]] = value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            kinds = " or ".join(
                _type_name(t).replace("a table", "tables")
                if typing.get_origin(t) is dict
                else _type_name(t) + "s"
                for t in typing.get_args(inner)
            )
            return f"a list of {kinds}"
        return f"a list of {_type_name(inner)}s"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}s"
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check `value` against a field type; ints are accepted where numbers are expected.
    An option (a `Literal` of strings) takes any string here: which ones it allows is
    checked with the ranges (`_check_limits`), naming them."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return isinstance(value, str), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            ok, coerced = _coerce(value, option)
            if ok:
                return True, coerced
        return False, None
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            return False, None
        items = [_coerce(v, inner) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if origin is dict:
        _, inner = typing.get_args(tp)
        if not isinstance(value, dict):
            return False, None
        entries = {k: _coerce(v, inner) for k, v in value.items()}
        return all(ok for ok, _ in entries.values()), {k: v for k, (_, v) in entries.items()}
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, tp), value


def _build(cls: type, raw: Any, source: str, prefix: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a TOML table, collecting problems instead of stopping."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        problems.append(f"{source}: {where}: expected a table")
        return cls()
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if f"{prefix}{key}" in RENAMED:  # a config (or a run's) from before the rename
            new = RENAMED[f"{prefix}{key}"].removeprefix(prefix)
            if new in raw:
                problems.append(
                    f"{source}: {prefix}{key}: renamed {prefix}{new}, which is also given; keep one"
                )
                continue
            key = new
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else ""
            problems.append(f"{source}: {prefix}{key}: unknown key{hint}")
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(typing.cast(type, tp), value, source, f"{prefix}{key}.", problems)
            continue
        odd = _not_finite(value, f"{prefix}{key}")
        if odd:
            problems += [f"{source}: {k}: must be a finite number, got {v}" for k, v in odd]
            continue
        ok, coerced = _coerce(value, tp)
        if not ok:
            problems.append(
                f"{source}: {prefix}{key}: expected {_type_name(tp)}, got {_describe(value)}"
            )
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def _not_finite(value: Any, key: str) -> list[tuple[str, str]]:
    """(key, value) of every nan or inf in a value (TOML allows them; no setting does)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(key, str(value))]
    if isinstance(value, dict):
        return [o for k, v in value.items() for o in _not_finite(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [o for i, v in enumerate(value) for o in _not_finite(v, f"{key}[{i}]")]
    return []


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}
    name = "table" if isinstance(value, dict) else kind.get(type(value), type(value).__name__)
    return f"{name} {json.dumps(value, default=str)}" if not isinstance(value, dict) else name


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


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (resolved once: `get_type_hints` is slow)."""
    return typing.get_type_hints(cls)


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


def _check_semantics(cfg: Config, source: str) -> list[str]:
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
