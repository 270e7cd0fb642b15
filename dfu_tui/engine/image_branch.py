"""Image branches: a Keras CNN per modality, trained on cached wound crops.

TensorFlow is imported lazily, inside the functions that build or train a model, so that
importing this module (or the engine) never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from dfu_tui.config import CollapseConfig, ImageModelConfig
from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.branch import BranchOutput
from dfu_tui.engine.folds import inner_folds, inner_split
from dfu_tui.engine.metrics import kappa, shares
from dfu_tui.engine.rules import TRAINING, EpochFlagger, Evidence, run_rules

if TYPE_CHECKING:
    import keras

EpochHook = Callable[[dict[str, Any]], None]

# Backbones that expect raw 0..255 pixels (they rescale inside).
_RAW_PIXEL_BACKBONES = ("EfficientNetB0", "MobileNetV3Small")


class BranchFailed(RuntimeError):
    """A branch could not be trained (e.g. the loss became NaN)."""


def configure_tensorflow(
    threads: int, mixed_precision: bool = False, deterministic: bool = False, fixed: bool = False
) -> list[str]:
    """Set TensorFlow's CPU threads (`fixed`: from the config, `threads` intra-op and one
    inter-op, so the model never depends on how many tasks run beside it), its deterministic
    ops, let it grow into the GPU memory it needs instead of taking all of it (tasks may
    share a device), and use mixed precision on a GPU when asked. Must run before
    TensorFlow executes any op; returns the GPUs it sees."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if deterministic or os.environ.get("TF_DETERMINISTIC_OPS", "").lower() in ("1", "true"):
        tf.config.experimental.enable_op_determinism()  # reproducible CNNs
    gpus = tf.config.list_physical_devices("GPU")
    try:
        if threads > 0:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1 if fixed else min(2, threads))
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # already initialised in this process: keep its settings
    if mixed_precision and gpus:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    return [g.name for g in gpus]


def build_image_branch(modality: str, size: int, cfg: ImageModelConfig) -> keras.Model:
    """A named Keras model `{modality}_branch` mapping uint8 crops to class probabilities.

    Augmentation layers (flips, small rotations, brightness, contrast) are part of the model
    and only act in training.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(size, size, 3), name=f"{modality}_input")
    x = inputs
    if cfg.augment:
        x = layers.RandomFlip("horizontal_and_vertical", name="flip")(x)
        x = layers.RandomRotation(0.05, fill_mode="constant", name="rotate")(x)
        x = layers.RandomBrightness(0.1, value_range=(0, 255), name="brightness")(x)
        x = layers.RandomContrast(0.1, name="contrast")(x)
    weights = {"none": None, "imagenet": "imagenet"}.get(
        cfg.weights, os.path.expanduser(cfg.weights)
    )
    if cfg.backbone == "small_cnn":
        x = layers.Rescaling(1 / 255.0, name="rescale")(x)
        for i, filters in enumerate((16, 32, 64)):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
            x = layers.Activation("relu", name=f"relu{i}")(x)
            x = layers.MaxPooling2D(name=f"pool{i}")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = layers.Dropout(0.3, name="dropout")(x)
        if weights is not None:
            raise BranchFailed("small_cnn has no pretrained weights; use weights = 'none'")
    else:
        factory = getattr(keras.applications, cfg.backbone)
        if cfg.backbone not in _RAW_PIXEL_BACKBONES:
            x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(x)
        kwargs: dict[str, Any] = {}
        if cfg.backbone == "MobileNetV3Small":
            kwargs["include_preprocessing"] = True
        backbone = factory(
            include_top=False,
            weights=weights,
            input_shape=(size, size, 3),
            pooling="avg",
            **kwargs,
        )
        x = backbone(x)
        x = layers.Dropout(0.3, name="dropout")(x)
    # float32 probabilities also under mixed precision (a float16 softmax loses small ones)
    outputs = layers.Dense(
        len(CLASSES), activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name=f"{modality}_branch")


def per_sample(crop_proba: np.ndarray, crop_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean crop probabilities per sample of `rows`; NaN for a sample without crops."""
    position = {int(r): i for i, r in enumerate(rows)}
    total = np.zeros((len(rows), len(CLASSES)))
    count = np.zeros(len(rows))
    for p, r in zip(crop_proba, crop_rows, strict=True):
        i = position.get(int(r))
        if i is not None:
            total[i] += p
            count[i] += 1
    with np.errstate(invalid="ignore"):
        out = total / count[:, None]
    return out


def _make_reporter(
    model_inputs: tuple[np.ndarray, np.ndarray, np.ndarray],
    val_inputs: tuple[np.ndarray, np.ndarray, np.ndarray],
    labels: np.ndarray,
    collapse: CollapseConfig,
    max_epochs: int,
    on_epoch: EpochHook | None,
    persist: int,
) -> Any:
    """A Keras Callback, shaped like CSVLogger: per-epoch kappas, shares, flags."""
    import keras

    class EpochReporter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, Any]] = []
            self.failed: str | None = None
            self.flagger = EpochFlagger(collapse, persist)

        def _kappa(
            self, inputs: tuple[np.ndarray, np.ndarray, np.ndarray]
        ) -> tuple[float, np.ndarray, np.ndarray]:
            crops, crop_rows, rows = inputs
            proba = per_sample(
                self.model.predict(crops, verbose=0, batch_size=256), crop_rows, rows
            )
            ok = ~np.isnan(proba).any(axis=1)
            y, pred = labels[rows[ok]], proba[ok].argmax(axis=1)
            return kappa(y, pred), y, pred

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs if logs is not None else {}
            loss = float(logs.get("loss", float("nan")))
            flags = run_rules(TRAINING, Evidence(loss=loss), collapse)
            record: dict[str, Any] = {"epoch": epoch + 1, "max_epochs": max_epochs, "loss": loss}
            if flags:
                self.failed = flags[0].detail
                self.model.stop_training = True
                logs["val_kappa"] = -1.0
            else:
                train_k, _, _ = self._kappa(model_inputs)
                val_k, y, pred = self._kappa(val_inputs)
                logs["val_kappa"] = val_k
                flags = self.flagger.step(y, pred, val_k, train_k)
                record.update(
                    train_kappa=train_k,
                    val_kappa=val_k,
                    val_n=int(len(y)),
                    rules_holding=sorted({f.rule for f in self.flagger.raw[-1]}),
                    collapse_streak=self.flagger.collapse_streak,
                    val_predicted_share=shares(pred),
                    val_true_share=shares(y),
                )
            record["flags"] = [f.to_dict() for f in flags]
            self.history.append(record)
            if on_epoch is not None:
                on_epoch(record)

    return EpochReporter()


def _compile(model: keras.Model, cfg: ImageModelConfig) -> None:
    import keras

    loss: Any = (
        keras.losses.CategoricalFocalCrossentropy()
        if cfg.loss == "focal"
        else keras.losses.CategoricalCrossentropy()
    )
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)


# The compiled, traced model of each architecture this process trained, with its optimizer's
# state before its first step: the next task of a warm worker trains it again from its own
# fresh initial state instead of tracing a new one (2-3 s of its first epoch).
_WARM: dict[tuple[str, int, ImageModelConfig], tuple[keras.Model, list[np.ndarray]]] = {}


def _fresh_model(modality: str, size: int, cfg: ImageModelConfig) -> keras.Model:
    """A compiled model in the state of one built and compiled now (after the caller set the
    seeds): weights, the random layers' seeds and the optimizer's state all as a new model's,
    so it trains to the very same weights. It is the traced model of an earlier task of this
    process when there is one (its variables are given the new model's values), else the
    new model itself. A caller must be done with a model before asking for the next."""
    model = build_image_branch(modality, size, cfg)  # draws its seeds as it always did
    key = (modality, size, cfg)
    warm = _WARM.get(key)
    if warm is not None:
        traced, optimizer_start = warm
        same = len(traced.variables) == len(model.variables)
        pairs = list(zip(traced.variables, model.variables, strict=same))
        if same and all(tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype for a, b in pairs):
            for a, b in pairs:  # weights, batch-norm statistics, random layers' seed states
                a.assign(b.value)
            for v, start in zip(traced.optimizer.variables, optimizer_start, strict=True):
                v.assign(start)
            return traced
    _compile(model, cfg)
    model.optimizer.build(model.trainable_variables)
    _WARM[key] = (model, [np.array(v.numpy()) for v in model.optimizer.variables])
    return model


def _crops_of(rows: np.ndarray, sample_index: np.ndarray) -> np.ndarray:
    """Positions of the crops that belong to the samples in `rows`."""
    return np.flatnonzero(np.isin(sample_index, rows))


def train_image_branch(
    modality: str,
    crops: np.ndarray,
    sample_index: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    cfg: ImageModelConfig,
    collapse: CollapseConfig,
    seed: int,
    inner: int = 0,
    on_epoch: EpochHook | None = None,
) -> BranchOutput:
    """Train on the training fold's crops; early stopping on an inner patient-grouped split.

    A sample's prediction is the mean of its crops' probabilities. With `inner` > 1, also
    returns out-of-fold probabilities of the training rows (models retrained per inner fold
    for the best epoch count, without looking at the held-out inner fold).
    """
    import keras

    keras.utils.set_random_seed(seed)
    have = np.unique(sample_index)
    train_with = train[np.isin(train, have)]
    if len(np.unique(labels[train_with])) < len(CLASSES):
        raise BranchFailed(f"{modality}: the training fold lacks images of some class")
    pos_tr, pos_va = inner_split(
        labels[train_with], groups[train_with], cfg.inner_val_fraction, seed
    )
    inner_train, inner_val = train_with[pos_tr], train_with[pos_va]
    idx_tr = _crops_of(inner_train, sample_index)
    onehot = np.eye(len(CLASSES), dtype=np.float32)
    y_crops = labels[sample_index]
    present = np.unique(y_crops[idx_tr])
    weights = compute_class_weight("balanced", classes=present, y=y_crops[idx_tr])
    class_weight = dict.fromkeys(range(len(CLASSES)), 1.0)
    class_weight.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})

    model = _fresh_model(modality, crops.shape[1], cfg)
    idx_va = _crops_of(inner_val, sample_index)
    reporter = _make_reporter(
        (crops[idx_tr], sample_index[idx_tr], inner_train),
        (crops[idx_va], sample_index[idx_va], inner_val),
        labels,
        collapse,
        cfg.epochs,
        on_epoch,
        # A model stuck from its first epoch trains 1 + patience epochs before early stopping:
        # its flag must be raised by then.
        persist=min(collapse.epoch_persist, cfg.patience + 1),
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_kappa", mode="max", patience=cfg.patience, restore_best_weights=True
    )
    model.fit(
        crops[idx_tr],
        onehot[y_crops[idx_tr]],
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        class_weight=class_weight,
        callbacks=[reporter, stopper, keras.callbacks.TerminateOnNaN()],
        verbose=0,
        shuffle=True,
    )
    if reporter.failed:
        raise BranchFailed(f"{modality}: {reporter.failed}")
    best_epoch = int(stopper.best_epoch) + 1 if stopper.best_weights is not None else cfg.epochs

    def predict(rows: np.ndarray, net: keras.Model) -> np.ndarray:
        idx = _crops_of(rows, sample_index)
        proba = net.predict(crops[idx], verbose=0, batch_size=256) if len(idx) else np.zeros((0, 3))
        return per_sample(proba, sample_index[idx], rows)

    # before the inner folds: they train the same (reused) model object again
    val_proba, train_proba = predict(val, model), predict(train, model)
    oof = None
    if inner > 1:
        oof = np.full((len(train), len(CLASSES)), np.nan)
        for k, (tr, va) in enumerate(inner_folds(labels[train], groups[train], inner, seed)):
            keras.utils.set_random_seed(seed + 1000 + k)
            sub = _fresh_model(modality, crops.shape[1], cfg)
            idx = _crops_of(train[tr], sample_index)
            sub.fit(
                crops[idx],
                onehot[y_crops[idx]],
                batch_size=cfg.batch_size,
                epochs=best_epoch,
                class_weight=class_weight,
                verbose=0,
            )
            oof[va] = predict(train[va], sub)
    out = BranchOutput(
        val_proba=val_proba,
        train_proba=train_proba,
        oof_proba=oof,
        info={
            "best_epoch": best_epoch,
            "epochs_run": len(reporter.history),
            "history": reporter.history,
        },
    )
    return out
