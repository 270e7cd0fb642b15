"""The configuration's shape: frozen dataclasses, each range beside its field (`limited`),
options as `Literal`s, the fusion and executor tables, and the renamed keys."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal, get_args

import tomli_w

from dfu_tui.data.schema import (
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
    """Where tasks run: "local" (worker processes on this machine) or "ray" (a Ray
    cluster at `address`, "auto" for the one this machine belongs to; none: a local one).
    Not part of a run's fingerprint: a run may resume on another executor."""

    kind: ExecutorKind = "local"
    address: str = ""
    cpus_per_task: float = limited(1.0, 0, low_open=True)
    # image tasks only (fractions share a GPU); metadata: none
    gpus_per_task: float = limited(1.0, 0)
    memory_gb: float = limited(0.0, 0)  # per task, 0: not reserved
    tasks_per_gpu: int = limited(1, 1)  # local executor: image tasks sharing one GPU
    # local executor: tasks a worker process trains before a fresh one takes over (0: no
    # limit, the imports and data loaded once per worker; 1: a fresh process per task)
    tasks_per_worker: int = limited(0, 0, 100_000)
    max_retries: int = limited(2, 0)  # ray: a task whose node died runs again elsewhere


@dataclass(frozen=True)
class NotifyConfig:
    """A command of the user's run when a run completes, fails or is cancelled, and when a
    fold raises a COLLAPSE (e.g. a mail or chat hook): its words (split as a shell would,
    but no shell runs it), then the run id, the state (`completed`, `failed`, `cancelled`,
    `collapse`) and the verdict or what happened; the same in `DFU_TUI_RUN_ID`,
    `DFU_TUI_RUN_STATE`, `DFU_TUI_VERDICT` and `DFU_TUI_RUN_DIR`. Its output goes to the
    run's `logs/notify.log`. Not part of a run's fingerprint."""

    command: str = ""


#: Sections that do not change a run's results: left out of its fingerprint, free to change
#: on a resume, and not compared when a launch repeats an earlier run.
NOT_RESULTS = ("executor", "notify")


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
    notify: NotifyConfig = field(default_factory=NotifyConfig)
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

    def results_settings(self) -> dict[str, Any]:
        """The settings the results depend on: everything but `NOT_RESULTS`."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_RESULTS}

    def fingerprint(self) -> str:
        """A short hash of the settings the results depend on (not where tasks run)."""
        blob = json.dumps(self.results_settings(), sort_keys=True).encode()
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


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (resolved once: `get_type_hints` is slow)."""
    return typing.get_type_hints(cls)
