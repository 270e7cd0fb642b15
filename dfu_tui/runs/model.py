"""A final model from a run: the chosen combination trained on every patient, saved so that a
co-author can verify it, read it (`MODEL_CARD.md`) and apply it to the next visits.

A model directory holds:

- `metadata.skops`: the metadata branch's scikit-learn pipeline, written with skops (loaded
  only with the types it trusts: never pickle or joblib);
- `<modality>.keras`: each image branch, loaded in Keras' safe mode and without compiling;
- `fusion.json`: the fusion (its strategy and per-modality weights);
- `model.json`: the manifest: versions, the config, the features and their ranges, the image
  settings, the class order, the data it was trained on, and the sha256 of every file;
- `MODEL_CARD.md`: intended use and its limits, the training data, the cross-validated
  performance expected of it (from the run), what carries it, what it cannot tell.

Loading checks every file against the manifest before anything is read, refuses a model of
another dfu-tui version (major.minor), and refuses a skops file holding a type outside
`TRUSTED_TYPES`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import dfu_tui
from dfu_tui.config import Config, load_config
from dfu_tui.data.schema import CLASSES, METADATA
from dfu_tui.errors import InputError
from dfu_tui.paths import PRIVATE_FILE_MODE, atomic_write, atomic_write_text, read_own_bytes
from dfu_tui.runs.rundir import RunDir

FORMAT = "dfu-tui model"
FORMAT_VERSION = 1
MANIFEST = "model.json"
CARD = "MODEL_CARD.md"
PROGRESS = "fit-progress.json"  # an unfinished fit: the branches saved so far
#: Types a metadata pipeline holds beyond skops' own trusted set (a tree's arrays, dtypes).
TRUSTED_TYPES = ("numpy.dtype", "sklearn.tree._tree.Tree")
MAX_MANIFEST_BYTES = 16 * 2**20


def sha256(path: Path) -> str:
    """The file's sha256, read without following a link or waiting on a FIFO (OSError for
    anything that is not a regular file); a co-author's model (another owner) is read."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions(images: bool) -> dict[str, str]:
    import importlib.metadata

    names = ["scikit-learn", "skops", "numpy", "pandas", *(["tensorflow"] if images else [])]
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


# ---------------------------------------------------------------- fitting


@dataclass
class FitPlan:
    """What `fit` trains: the run's config, the combination, its fusion, the epochs of each
    image branch (the run's median best epoch over its folds)."""

    run: RunDir
    cfg: Config
    combination: list[str]
    weights: dict[str, float]
    epochs: dict[str, int] = field(default_factory=dict)
    epochs_from: dict[str, str] = field(default_factory=dict)


def plan_fit(run: RunDir, combination: str | None) -> FitPlan:
    """Check the run and choose what to train; InputError naming what is wrong."""
    from dfu_tui.runs.catalog import read_json
    from dfu_tui.runs.state import load_state

    cfg = load_config(run.config)
    state = load_state(run.path, history=False)
    summary = read_json(run.summary)
    if state.status != "completed" or summary is None:
        raise InputError(
            f"{run.path}: the run is {state.effective_status()}; a model is fitted from a "
            "completed run (its cross-validation is what the model card reports)"
        )
    # every combination the run scored, and each branch alone (scored on every fold too)
    combos = ["+".join(c) for c in cfg.combinations]
    combos += [b["branch"] for b in summary.get("branches", []) if b["branch"] not in combos]
    if combination is None:
        chosen = (summary.get("selection") or {}).get("selected") or list(cfg.combinations[-1])
    else:
        wanted = "+".join(m for m in combination.replace(" ", "").split("+") if m)
        if wanted not in combos:
            raise InputError(
                f"--combination: {combination!r} is not one of the run's: {', '.join(combos)}"
            )
        chosen = wanted.split("+")
    plan = FitPlan(run, cfg, list(chosen), cfg.fusion_weights(tuple(chosen)))
    for m in chosen:
        if m == METADATA:
            continue
        best = [e for t, e in state.best_epochs.items() if t.endswith(f"-{m}")]
        if best:
            plan.epochs[m] = max(1, round(statistics.median(best)))
            plan.epochs_from[m] = f"median best epoch over {len(best)} folds of the run"
        else:
            plan.epochs[m] = cfg.image_model.epochs
            plan.epochs_from[m] = "image_model.epochs (the run logged no best epoch)"
    return plan


def _check_target(output: Path, plan: FitPlan) -> dict[str, Any]:
    """A new folder, or an unfinished fit of the same run and combination (resumed: its
    saved branches are kept); returns what it holds already."""
    if output.is_symlink():
        raise InputError(f"{output}: a symbolic link; give a new folder")
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: not a folder; give a new folder for the model")
    if (output / MANIFEST).exists():
        raise InputError(
            f"{output}: already holds a model ({MANIFEST}); give another --output or remove it"
        )
    progress: dict[str, Any] = {}
    if output.is_dir() and any(output.iterdir()):
        try:
            progress = json.loads(read_own_bytes(output / PROGRESS, 1 << 20).decode("utf-8"))
        except (OSError, ValueError):
            raise InputError(
                f"{output}: not empty and not an unfinished fit; give a new folder"
            ) from None
        if (
            progress.get("run") != plan.run.run_id
            or progress.get("combination") != plan.combination
        ):
            raise InputError(f"{output}: an unfinished fit of another run or combination")
    return progress


class InnerRows:
    """An unfinished fit's inner out-of-fold rows: each (branch, inner fold) saved as it is
    made (`.inner-BRANCH-K.npy`, private) and listed with its sha256 in the progress file,
    so a stopped or killed fit that is resumed trains again only the inner folds it had not
    finished. A file that is not the one listed, or not rows of that fold's shape, is made
    again; the files are removed once the fusion is written."""

    def __init__(self, output: Path, record: dict[str, Any]) -> None:
        self.output, self.record = output, record
        listed = record.get("inner")
        self.listed: dict[str, str] = (
            {k: v for k, v in listed.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(listed, dict)
            else {}
        )
        record["inner"] = self.listed

    def _path(self, key: str) -> Path:
        return self.output / f".inner-{key}.npy"

    def get(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The saved rows of `key`, if they are the ones listed, of `shape` and probabilities
        (or missing: a visit without that image)."""
        import io

        digest = self.listed.get(key)
        if digest is None:
            return None
        try:
            # no more than the rows' own size and .npy's header: a huge file is not read
            data = read_own_bytes(self._path(key), 8 * shape[0] * shape[1] + 4096)
            rows = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError):
            return None
        if (
            hashlib.sha256(data).hexdigest() != digest
            or rows.shape != shape
            or rows.dtype != np.float64
            or not (np.isnan(rows) | ((rows >= 0) & (rows <= 1))).all()  # NaN: no image
        ):
            return None
        return rows

    def put(self, key: str, rows: np.ndarray) -> None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(rows, dtype=np.float64), allow_pickle=False)
        data = buffer.getvalue()

        def write(fh: Any) -> None:
            fh.write(data)

        atomic_write(self._path(key), write)
        self.listed[key] = hashlib.sha256(data).hexdigest()
        atomic_write_text(self.output / PROGRESS, json.dumps(self.record, indent=1))

    def clear(self) -> None:
        for key in list(self.listed):
            self._path(key).unlink(missing_ok=True)
        self.listed.clear()


def fit_fusion(
    plan: FitPlan,
    dataset: Any,
    features: list[str],
    output: Path,
    say: Callable[[str], None] = lambda text: None,
    inner: InnerRows | None = None,
) -> dict[str, Any]:
    """The combination's fusion as `fusion.json` holds it: its strategy, the configured
    weights and what it learned (`params`), fitted as in cross-validation but on every
    patient: a strategy that learns from inner out-of-fold rows on the patient-grouped
    inner folds of all the data (each branch trained again per inner fold, the CNNs for the
    final model's epochs; with `inner`, each inner fold's rows are kept as they are made and
    those of an unfinished fit are taken back); one that learns from the training rows on
    the final branches' own predictions (the forest's patient-grouped out-of-fold ones)."""
    from dfu_tui.config import FUSIONS
    from dfu_tui.engine import final
    from dfu_tui.engine.folds import inner_folds
    from dfu_tui.engine.fusion import make_fusion

    cfg, combo = plan.cfg, plan.combination
    strategy = cfg.fusion.strategy
    out: dict[str, Any] = {"strategy": strategy, "weights": plan.weights}
    spec = FUSIONS[strategy]
    if len(combo) == 1:
        out["params"] = {"weights": {combo[0]: 1.0}}
        return out
    table = dataset.table
    labels, n = table.labels, len(table.labels)
    seed = cfg.cv.seed * 1000
    folds = inner_folds(labels, table.patients, max(2, cfg.cv.inner_folds), seed)
    rows: dict[str, np.ndarray] = {}
    if spec.learns_from != "nothing":
        say(f"fusion: {strategy} learns from {spec.learns_from} ({len(folds)} inner folds)")
        for branch in combo:
            if branch != METADATA and not spec.needs_oof:  # the final CNN's own rows
                net = _load_keras(output / f"{branch}.keras")
                crops = dataset.crops[branch]
                rows[branch] = final.image_proba(net, crops.crops, crops.sample_index, n)
                continue
            oof = np.full((n, len(CLASSES)), np.nan)
            for k, (train, val) in enumerate(folds):
                key = f"{branch}-{k + 1}"
                kept = inner.get(key, (len(val), len(CLASSES))) if inner else None
                if kept is not None:
                    say(f"fusion: {branch} on inner fold {k + 1}: kept from the unfinished fit")
                    oof[val] = kept
                    continue
                say(f"fusion: {branch} on inner fold {k + 1} of {len(folds)}")
                if branch == METADATA:
                    model = final.fit_metadata(
                        table.frame[features].iloc[train], labels[train], cfg.metadata_model, seed
                    )
                    oof[val] = final.metadata_proba(model, table.frame[features].iloc[val])
                    if inner:
                        inner.put(key, oof[val])
                    continue
                crops = dataset.crops[branch]
                used = np.isin(crops.sample_index, train)
                if len(np.unique(labels[crops.sample_index[used]])) < len(CLASSES):
                    raise InputError(
                        f"{branch}: an inner fold lacks images of some class; the fusion "
                        "cannot be fitted on every patient"
                    )
                net = final.fit_image(
                    branch,
                    crops.crops[used],
                    crops.sample_index[used],
                    labels,
                    cfg.image_model,
                    seed + 1000 + k,
                    plan.epochs[branch],
                    warm=True,  # the same traced model for every inner fold
                )
                shown = np.isin(crops.sample_index, val)
                proba = final.image_proba(net, crops.crops[shown], crops.sample_index[shown], n)
                oof[val] = proba[val]
                if inner:
                    inner.put(key, oof[val])
            rows[branch] = oof
    fitted = make_fusion(strategy, plan.weights, seed).fit(
        rows or {b: np.zeros((n, len(CLASSES))) for b in combo}, labels
    )
    try:
        out["params"] = fitted.params()
    except ValueError as exc:
        raise InputError(f"fusion {strategy}: {exc}") from None
    if spec.learns_from != "nothing":
        out["fitted_on"] = (
            f"inner out-of-fold rows of every patient ({len(folds)} patient-grouped folds)"
            if spec.needs_oof
            else "the final branches' own rows (the forest's patient-grouped out-of-fold ones)"
        )
    return out


def _load_keras(path: Path) -> Any:
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def fit_model(plan: FitPlan, output: Path, say: Callable[[str], None] = lambda text: None) -> Path:
    """Train every branch of the plan on every patient and write the model directory (a
    resumed fit keeps the branches it saved). Returns the folder."""
    from dfu_tui.data.dataset import data_fingerprint, load_dataset
    from dfu_tui.engine import final
    from dfu_tui.engine.training import branch_features

    cfg, combo = plan.cfg, plan.combination
    progress = _check_target(output, plan)
    output.mkdir(mode=0o700, parents=True, exist_ok=True)
    saved: dict[str, str] = dict(progress.get("files", {}))
    record = {
        "run": plan.run.run_id,
        "combination": combo,
        "files": saved,
        "inner": progress.get("inner", {}),
    }
    atomic_write_text(output / PROGRESS, json.dumps(record, indent=1))
    images = [m for m in combo if m != METADATA]
    say(f"loading the run's dataset ({', '.join(combo)})")
    dataset = load_dataset(cfg.dataset, modalities=images)
    table = dataset.table
    seed = cfg.cv.seed * 1000
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    features = branch_features(cfg, dataset, METADATA) if METADATA in combo else []
    for branch in combo:
        name = f"{branch}.skops" if branch == METADATA else f"{branch}.keras"
        if saved.get(name) and (output / name).is_file() and sha256(output / name) == saved[name]:
            say(f"{branch}: kept from the unfinished fit")
            continue
        t0 = time.perf_counter()
        if branch == METADATA:
            say(f"metadata: a forest on {len(table.labels)} samples, {len(features)} features")
            model = final.fit_metadata(
                table.frame[features], table.labels, cfg.metadata_model, seed
            )
            import skops.io as sio

            data: bytes = sio.dumps(model)

            def write(fh: Any, data: bytes = data) -> None:
                fh.write(data)

            atomic_write(output / name, write)
        else:
            crops = dataset.crops[branch]
            say(f"{branch}: {plan.epochs[branch]} epochs on {len(crops.crops)} crops")
            from dfu_tui.engine.image_branch import configure_tensorflow

            im = cfg.image_model
            configure_tensorflow(im.threads or 1, im.mixed_precision, im.deterministic, fixed=True)
            net = final.fit_image(
                branch,
                crops.crops,
                crops.sample_index,
                table.labels,
                im,
                seed,
                plan.epochs[branch],
            )
            with tempfile.TemporaryDirectory(dir=output, prefix=".keras-") as tmp:
                path = Path(tmp) / name
                net.save(path)
                os.chmod(path, PRIVATE_FILE_MODE)
                os.replace(path, output / name)
        seconds[branch] = round(time.perf_counter() - t0, 1)
        saved[name] = sha256(output / name)
        atomic_write_text(output / PROGRESS, json.dumps(record, indent=1))
    inner = InnerRows(output, record)
    fusion = fit_fusion(plan, dataset, features, output, say, inner)
    atomic_write_text(output / "fusion.json", json.dumps(fusion, indent=1) + "\n")
    saved["fusion.json"] = sha256(output / "fusion.json")
    inner.clear()
    frame = table.frame[features] if features else None
    ranges = {}
    if frame is not None:
        for c in features:
            values = frame[c]
            if values.dtype.kind in "if" and values.notna().any():
                ranges[c] = [float(values.min()), float(values.max())]
    shares = {c: float(np.mean(table.labels == i)) for i, c in enumerate(CLASSES)}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dfu_tui": dfu_tui.__version__,
        "packages": _versions(bool(images)),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "run": plan.run.run_id,
        "combination": combo,
        "fusion": fusion,
        "classes": list(CLASSES),
        "config": cfg.results_settings(),
        "features": {
            "used": features,
            "left_out": {k: list(v) for k, v in table.excluded.items()},
            "ranges": ranges,
        },
        "image": {
            "modalities": images,
            "size": cfg.data.image_size,
            "epochs": plan.epochs,
            "epochs_from": plan.epochs_from,
        },
        "data": {
            "fingerprint": data_fingerprint(cfg.dataset, images),
            "patients": int(len(np.unique(table.patients))),
            "samples": int(len(table.labels)),
            "class_shares": shares,
            "with_images": {m: int(len(np.unique(dataset.crops[m].sample_index))) for m in images},
        },
        "fit_seconds": {**seconds, "total": round(time.perf_counter() - started, 1)},
    }
    card = model_card(plan, manifest)
    atomic_write_text(output / CARD, card)
    saved[CARD] = sha256(output / CARD)
    manifest["files"] = dict(sorted(saved.items()))
    atomic_write_text(output / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    (output / PROGRESS).unlink(missing_ok=True)
    from dfu_tui.runs.catalog import MODEL_WRITTEN
    from dfu_tui.runs.events import EventWriter

    events = EventWriter(plan.run.events)
    try:
        events.emit("message", text=f"{MODEL_WRITTEN}: {output} ({'+'.join(combo)})")
    finally:
        events.close()
    return output


# ---------------------------------------------------------------- the model card


def model_card(plan: FitPlan, manifest: Mapping[str, Any]) -> str:
    """MODEL_CARD.md: what the model is for, what it was trained on, what cross-validation
    says to expect of it, what carries it, and what it cannot tell."""
    from dfu_tui.engine.rules import SCALE_NAMES, caveat_texts, verdict_headline
    from dfu_tui.runs.catalog import read_json

    summary = read_json(plan.run.summary) or {}
    name = "+".join(plan.combination)
    combo: dict[str, Any] = next(
        (c for c in summary.get("combinations", []) if c.get("modalities") == plan.combination),
        {},
    )
    if not combo and len(plan.combination) == 1:  # a branch alone: its own folds
        combo = next(
            (b for b in summary.get("branches", []) if b.get("branch") == plan.combination[0]),
            {},
        )
    data = manifest["data"]
    lines = [
        f"# Model card: {name} (dfu-tui {manifest['dfu_tui']})",
        "",
        "## Intended use",
        "",
        "Research on the healing phase (I, P, R) of diabetic foot ulcers from the clinic's "
        "visit records and images. **Not a diagnostic device**: it was not validated "
        "prospectively, on another clinic, or against clinicians' decisions; a prediction is "
        "not a diagnosis.",
        "",
        "## Training data",
        "",
        f"- {data['samples']} visits of {data['patients']} patients (run {manifest['run']}, "
        f"data fingerprint {data['fingerprint']}).",
        "- Class shares: " + ", ".join(f"{c} {s:.1%}" for c, s in data["class_shares"].items()),
    ]
    for m, n in data.get("with_images", {}).items():
        lines.append(f"- {m}: {n} of {data['samples']} visits have an image.")
    used = manifest["features"]["used"]
    if used:
        left = manifest["features"]["left_out"]
        lines.append(
            f"- Metadata features: {len(used)} used; left out: "
            + "; ".join(f"{reason} ({len(cols)})" for reason, cols in left.items())
        )
    for m, n in manifest["image"]["epochs"].items():
        lines.append(
            f"- {m}: trained {n} epochs ({manifest['image']['epochs_from'][m]}) at "
            f"{manifest['image']['size']} px"
        )
    fusion = manifest["fusion"]
    weights = ", ".join(f"{m} {w:.2f}" for m, w in fusion["weights"].items())
    lines.append(
        f"- Fusion: {fusion['strategy']} (configured {weights}), renormalised over the "
        "modalities a visit has."
    )
    if fusion.get("fitted_on"):
        learned = fusion.get("params", {})
        what = (
            "weights " + ", ".join(f"{m} {w:.2f}" for m, w in learned["weights"].items())
            if isinstance(learned.get("weights"), dict)
            else "a logistic model over the branches' probabilities (its coefficients "
            "are in fusion.json)"
        )
        lines.append(f"- The fusion learned {what} from {fusion['fitted_on']}.")
    lines.append("")
    lines += ["## Expected performance (the run's cross-validation)", ""]
    if combo:
        folds = len(combo.get("folds", []))
        for key in ("kappa", "quadratic_kappa"):
            mean, sd = combo["mean"].get(key), combo["std"].get(key)
            if mean is not None:
                lines.append(
                    f"- {SCALE_NAMES[key]}: {mean:.3f} ± "
                    f"{0.0 if sd is None or math.isnan(sd) else sd:.3f} "
                    f"(mean ± sd over {folds} patient-grouped validation folds)"
                )
        f1 = _mean_f1(combo.get("folds", []))
        if f1:
            lines.append("- Per-class F1: " + ", ".join(f"{c} {v:.3f}" for c, v in f1.items()))
        verdict = combo.get("verdict")
        if verdict:
            lines.append(f"- Verdict (docs/criteria.md): {verdict_headline(verdict)}")
            lines += [f"- Caveat: {t}" for t in caveat_texts(verdict)]
        flags = sum(
            1
            for f in combo.get("folds", [])
            for x in f.get("flags", [])
            if x.get("level") == "collapse"
        )
        lines.append(f"- Collapse flags in cross-validation: {flags}")
    else:
        lines.append("- The run's summary holds no scores for this combination.")
    holdout = summary.get("holdout")
    if holdout:
        row = next(
            (r for r in holdout["combinations"] if r["modalities"] == plan.combination), None
        )
        if row:
            lines.append(
                "- Temporal hold-out (latest-enrolled patients): "
                f"{row.get(holdout['metric'], float('nan')):.3f} "
                f"on n={row.get('n')} ({SCALE_NAMES.get(holdout['metric'], holdout['metric'])})"
            )
    radar = summary.get("radar")
    if radar and METADATA in plan.combination:
        top = ", ".join(
            f"{r['feature']} ({r['importance']:+.3f})"
            for r in radar["features"][:5]
            if r.get("importance") is not None
        )
        lines += [
            "",
            "## What carries it",
            "",
            f"- Leakage radar, top metadata features (kappa drop when shuffled): {top}",
        ]
        lines += [
            f"- Radar flag, fold {f['fold']}: {f['rule']}: {f['detail']}"
            for f in radar["flags"][:10]
        ]
    lines += [
        "",
        "## What this model cannot tell",
        "",
        "- It has no held-out data of its own: every patient trained it. The figures above are "
        "what cross-validation of the same configuration measured, not this model's.",
        "- Early stopping had no fold left: each image branch trained a fixed number of epochs.",
        "- Visits outside the training ranges (flagged in `predict`'s output) are extrapolation.",
        "- A later cohort may differ (case mix, era): check it with `dfu-tui predict` on "
        "labelled visits before relying on it.",
        "",
        "## Verifying it",
        "",
        f"`{MANIFEST}` lists the sha256 of every file; `dfu-tui predict` checks them, the "
        "dfu-tui version and the data's columns before anything is loaded.",
        "",
    ]
    return "\n".join(lines)


def _mean_f1(folds: list[Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for c in CLASSES:
        values = [float(f["f1"][c]) for f in folds if f.get("f1", {}).get(c) is not None]
        if values:
            out[c] = statistics.fmean(values)
    return out


# ---------------------------------------------------------------- loading and predicting


@dataclass
class Model:
    path: Path
    manifest: dict[str, Any]
    metadata: Any = None
    images: dict[str, Any] = field(default_factory=dict)


def verify(path: Path) -> dict[str, Any]:
    """The manifest, once every file it lists matches its sha256 and the model is of this
    dfu-tui's version; InputError (one line) naming what does not."""
    if not path.is_dir():
        raise InputError(f"{path}: not a model folder (expected the folder `dfu-tui fit` wrote)")
    try:
        # a co-author's model is read too: no link, no FIFO, bounded; never written
        from dfu_tui.runs.events import read_regular

        data = read_regular(path / MANIFEST, 0, MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path / MANIFEST}: missing; not a model folder") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path / MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path / MANIFEST}: not a dfu-tui model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path / MANIFEST}: model format {manifest.get('format_version')}, this dfu-tui "
            f"reads {FORMAT_VERSION}"
        )
    made, here = str(manifest.get("dfu_tui", "")), dfu_tui.__version__
    if made.split(".")[:2] != here.split(".")[:2]:
        raise InputError(
            f"{path}: a model of dfu-tui {made}; this is {here} (same major.minor needed)"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise InputError(f"{path / MANIFEST}: lists no files")
    for name, digest in files.items():
        target = path / str(name)
        if "/" in str(name) or target.is_symlink() or not target.is_file():
            what = "a symbolic link" if target.is_symlink() else "missing"
            raise InputError(f"{target}: {what} (listed in {MANIFEST}); not read")
        try:
            digest_here = sha256(target)
        except OSError as exc:
            raise InputError(f"{target}: cannot read it ({exc})") from None
        if digest_here != digest:
            raise InputError(
                f"{target}: does not match its sha256 in {MANIFEST}; the model was changed"
            )
    combo = manifest.get("combination")
    if not (isinstance(combo, list) and combo and all(isinstance(b, str) for b in combo)):
        raise InputError(f"{path / MANIFEST}: combination: expected a list of branch names")
    # what fuses the branches is the checked fusion.json: the manifest's copy must be it
    try:
        fusion = json.loads(read_regular(path / "fusion.json", 0, 1 << 20).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path / 'fusion.json'}: unreadable ({exc})") from None
    if "fusion.json" not in files or not isinstance(fusion, dict):
        raise InputError(f"{path / 'fusion.json'}: not a fusion of this model")
    if manifest.get("fusion") != fusion:
        raise InputError(f"{path / MANIFEST}: its fusion differs from fusion.json; not applied")
    return manifest


def load_model(path: Path, images: bool = True) -> Model:
    """A verified model; its metadata pipeline through skops with `TRUSTED_TYPES` only, its
    image branches (when `images`) in Keras' safe mode. TensorFlow is imported only here,
    and only for a model with an image branch."""
    manifest = verify(path)
    model = Model(path, manifest)
    if METADATA in manifest["combination"]:
        import skops.io as sio

        file = path / f"{METADATA}.skops"
        untrusted = [t for t in sio.get_untrusted_types(file=str(file)) if t not in TRUSTED_TYPES]
        if untrusted:
            raise InputError(
                f"{file}: holds types this tool does not trust ({', '.join(untrusted)}); not loaded"
            )
        model.metadata = sio.load(str(file), trusted=list(TRUSTED_TYPES))
    if images:
        for m in manifest["image"]["modalities"]:
            import keras

            model.images[m] = keras.saving.load_model(
                path / f"{m}.keras", compile=False, safe_mode=True
            )
    return model


@dataclass
class Predictions:
    """What `predict` found: one row per visit, and the labelled evaluation (when the data had
    labels)."""

    header: list[str]
    rows: list[list[str]]
    evaluation: list[str]
    n: int


def predict(model_dir: Path, data_root: Path, images_required: bool = True) -> Predictions:
    """Predict every visit of a folder in the clinic's format with a verified model (an image
    model refuses a folder without any of its image folders unless not `images_required`:
    visits given without images are predicted from their metadata)."""
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine import final
    from dfu_tui.engine.training import branch_features

    manifest = verify(model_dir)
    combo = manifest["combination"]
    if not data_root.is_dir():
        raise InputError(f"{data_root}: not a folder (expected a folder in the clinic's format)")
    raw = json.loads(json.dumps(manifest["config"]))
    raw.setdefault("data", {})["root"] = str(data_root)
    raw["data"]["cache_dir"] = ""
    cfg = load_config(None, raw=raw)
    wanted = [m for m in manifest["image"]["modalities"]]
    folders = {m: data_root / cfg.data.folders.get(m, m) for m in wanted}
    present = [m for m in wanted if folders[m].is_dir()]
    if wanted and not present and images_required:
        raise InputError(
            f"{data_root}: no image folder of the model's {', '.join(wanted)} "
            f"(expected {', '.join(str(folders[m]) for m in wanted)}); a model with an image "
            "branch needs its images"
        )
    dataset = load_dataset(cfg.dataset, modalities=present, labels_optional=True)
    table = dataset.table
    used = manifest["features"]["used"]
    if used:
        have = branch_features(cfg, dataset, METADATA)
        missing = [c for c in used if c not in have]
        extra = [c for c in have if c not in used]
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"not in the model {', '.join(extra)}"] if extra else []
            )
            raise InputError(
                f"{dataset.metadata_path}: columns do not match the model's: {'; '.join(parts)}"
            )
    loaded = load_model(model_dir, images=bool(present))
    n = len(table.labels)
    probs: dict[str, np.ndarray] = {}
    if loaded.metadata is not None:
        probs[METADATA] = final.metadata_proba(loaded.metadata, table.frame[used])
    for m in present:
        crops = dataset.crops[m]
        probs[m] = final.image_proba(loaded.images[m], crops.crops, crops.sample_index, n)
    fused = fused_proba(manifest, combo, probs, n)
    ranges = manifest["features"].get("ranges", {})
    header = ["patient", "appt", "dfu"]
    for b in combo:
        header += [f"{b}_{c}" for c in CLASSES]
    header += [f"fused_{c}" for c in CLASSES] + [
        "predicted",
        "modalities",
        "outside_training_range",
    ]
    if (table.labels >= 0).any():
        header.append("true")
    rows = []
    for i, key in enumerate(table.keys):
        row = [str(k) for k in key]
        for b in combo:
            p = probs.get(b, np.full((n, len(CLASSES)), np.nan))[i]
            row += ["" if math.isnan(v) else f"{v:.6f}" for v in p]
        f = fused[i]
        has = [b for b in combo if b in probs and not np.isnan(probs[b][i]).any()]
        outside = []
        for c, (low, high) in ranges.items():
            v = table.frame[c].iloc[i]
            if v == v and (v < low or v > high):
                outside.append(c)
        row += ["" if math.isnan(v) else f"{v:.6f}" for v in f]
        row += [
            "" if np.isnan(f).any() else CLASSES[int(np.argmax(f))],
            "+".join(has),
            ";".join(outside),
        ]
        if "true" in header:
            row.append(CLASSES[table.labels[i]] if table.labels[i] >= 0 else "")
        rows.append(row)
    return Predictions(header, rows, evaluate(manifest, cfg, table.labels, fused), n)


def fused_proba(
    manifest: Mapping[str, Any], combo: list[str], probs: dict[str, np.ndarray], n: int
) -> np.ndarray:
    """The model's fusion of the branches' probabilities (a branch a visit lacks: NaN rows,
    renormalised over what it has, as in cross-validation); a model saved before fusions
    kept their parameters: its weights."""
    from dfu_tui.engine.fusion import fusion_from_params

    fusion = manifest["fusion"]
    every = {b: probs.get(b, np.full((n, len(CLASSES)), np.nan)) for b in combo}
    if len(combo) == 1:
        return every[combo[0]]
    params = fusion.get("params", {"weights": fusion.get("weights")})
    try:
        fitted = fusion_from_params(str(fusion.get("strategy")), params, combo)
    except ValueError as exc:
        raise InputError(f"model.json: fusion: {exc}") from None
    return np.asarray(fitted.predict_proba(every))


def evaluate(
    manifest: Mapping[str, Any], cfg: Config, labels: np.ndarray, fused: np.ndarray
) -> list[str]:
    """On labelled visits: both kappas with n, the confusion matrix, predicted against true
    shares, and the collapse rules: what the model does on a later cohort."""
    from dfu_tui.engine.metrics import both_kappas
    from dfu_tui.engine.rules import check_predictions

    ok = (labels >= 0) & ~np.isnan(fused).any(axis=1)
    if not ok.any():
        return []
    y, pred = labels[ok], fused[ok].argmax(axis=1)
    k = both_kappas(y, pred)
    out = [
        f"labelled visits: {int(ok.sum())}; kappa (unweighted) {k['kappa']:.3f}, quadratic "
        f"kappa {k['quadratic_kappa']:.3f} (n={int(ok.sum())})"
    ]
    out.append("confusion (rows: true, columns: predicted " + "/".join(CLASSES) + "):")
    for i, c in enumerate(CLASSES):
        out.append(
            f"  {c}: "
            + " ".join(f"{int(((y == i) & (pred == j)).sum()):4d}" for j in range(len(CLASSES)))
        )
    out.append(
        "shares predicted vs true: "
        + ", ".join(
            f"{c} {np.mean(pred == i):.2f} vs {np.mean(y == i):.2f}" for i, c in enumerate(CLASSES)
        )
    )
    flags = check_predictions(y, pred, cfg.collapse, kappa=k["kappa"])
    out += [f"{f.level.upper()} {f.rule}: {f.detail}" for f in flags] or ["no collapse flag"]
    return out


#: The most visits one `predict --json` takes.
MOST_JSON_VISITS = 10_000


def predict_visits(model_dir: Path, text: str) -> list[dict[str, Any]]:
    """`predict --json`: visits as JSON (one object, or a list of them) of the metadata CSV's
    columns, predicted from their metadata (no images: an image branch's weight goes to the
    branches a visit has). One dict per visit: its key, each branch's and the fused
    probabilities, the predicted phase, the modalities used, the columns outside the
    training range."""
    import csv

    manifest = verify(model_dir)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InputError(f"standard input: not JSON ({exc})") from None
    visits = [doc] if isinstance(doc, dict) else doc
    if not isinstance(visits, list) or not visits or not all(isinstance(v, dict) for v in visits):
        raise InputError("standard input: expected a JSON object (a visit) or a list of them")
    visits = [{str(k).lstrip("\ufeff"): x for k, x in v.items()} for v in visits]
    if len(visits) > MOST_JSON_VISITS:
        raise InputError(f"standard input: {len(visits)} visits; at most {MOST_JSON_VISITS}")
    for i, v in enumerate(visits):
        odd = [k for k, x in v.items() if not isinstance(x, str | int | float | type(None))]
        if odd:
            raise InputError(f"standard input: visit {i + 1}: {odd[0]!r} is not a plain value")
    data = manifest["config"].get("data", {})
    patient = str(data.get("patient_column", "Patient#"))
    keys = {patient: 0, "Appt#": 0, "DFU#": 1}  # one visit needs no key: a placeholder
    columns = list(dict.fromkeys([*keys, *(k for v in visits for k in v)]))
    with tempfile.TemporaryDirectory(prefix="dfu-tui-visits-") as tmp:
        path = Path(tmp) / str(data.get("metadata_file", "metadata.csv"))
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for i, v in enumerate(visits):
                given = {**keys, patient: i, **v}
                writer.writerow(["" if given.get(c) is None else given.get(c, "") for c in columns])
        found = predict(model_dir, Path(tmp), images_required=False)
    out = []
    for position, row in enumerate(found.rows, start=1):  # in the order given
        cells = dict(zip(found.header, row, strict=True))
        out.append(
            {
                "visit": position,
                "key": [int(cells["patient"]), int(cells["appt"]), int(cells["dfu"])],
                "probabilities": {
                    b: {c: _number(cells[f"{b}_{c}"]) for c in CLASSES}
                    for b in [*manifest["combination"], "fused"]
                },
                "predicted": cells["predicted"] or None,
                "modalities": [m for m in cells["modalities"].split("+") if m],
                "outside_training_range": [
                    c for c in cells["outside_training_range"].split(";") if c
                ],
            }
        )
    return out


def _number(cell: str) -> float | None:
    return float(cell) if cell else None
