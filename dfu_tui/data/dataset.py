"""The dataset of a config: sample table, each modality's wound crops (cached), coverage."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfu_tui.data import images
from dfu_tui.data.filenames import parse_image_name
from dfu_tui.data.metadata import SampleTable, read_metadata
from dfu_tui.data.schema import CAMERA_OF, CAMERAS, CLASSES, DEFAULT_BOX_FILES, DEFAULT_FOLDERS
from dfu_tui.data.settings import DatasetSpec
from dfu_tui.errors import InputError
from dfu_tui.paths import atomic_write, private_dir, user_cache_dir

# Bump when crop geometry or decoding changes, so old caches are not reused.
CROP_CACHE_VERSION = 2

Progress = Callable[[str, int, int], None]


@dataclass
class ModalityCrops:
    """All wound crops of one image modality, each tied to a sample of the table."""

    modality: str
    crops: np.ndarray  # (M, S, S, 3) uint8
    sample_index: np.ndarray  # (M,) row of the sample table
    files: np.ndarray  # (M,) source file name of each crop
    skipped: list[str]  # one line per skipped file or box, naming it
    counts: dict[str, int]  # why images were not used, by reason
    from_cache: bool = False

    def samples_with_images(self) -> int:
        """How many samples have at least one crop."""
        return len(np.unique(self.sample_index))


@dataclass
class Dataset:
    """A loaded dataset: the sample table and the crops of the chosen image modalities."""

    root: Path
    metadata_path: Path
    table: SampleTable
    crops: dict[str, ModalityCrops] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.table.keys)

    def coverage(self) -> dict[str, Any]:
        """Samples, patients, class shares, and per modality how many samples have images."""
        labels = self.table.labels
        shares = {c: float(np.mean(labels == i)) for i, c in enumerate(CLASSES)}
        repeated = np.array([n > 1 for n in self._key_counts()], dtype=bool)
        return {
            "root": str(self.root),
            "samples": self.n_samples,
            "patients": int(len(np.unique(self.table.patients))),
            "duplicates_collapsed": self.table.duplicates_collapsed,
            "repeated_key_samples": int(repeated.sum()),
            "class_shares": shares,
            "features": len(self.table.feature_columns),
            "modalities": {
                m: {
                    "samples_with_images": c.samples_with_images(),
                    "crops": int(len(c.sample_index)),
                    "repeated_key_samples_with_images": int(
                        len(np.unique(c.sample_index[repeated[c.sample_index]]))
                    ),
                    "skipped": dict(c.counts),
                    "from_cache": c.from_cache,
                }
                for m, c in self.crops.items()
            },
        }

    def _key_counts(self) -> list[int]:
        """Per sample, how many samples share its key."""
        counts = Counter(self.table.keys)
        return [counts[k] for k in self.table.keys]

    def skipped(self) -> list[str]:
        """Every skipped file or box, one line each."""
        return [line for c in self.crops.values() for line in c.skipped]


def resolve_root(cfg: DatasetSpec) -> Path:
    """The dataset folder; `demo` means the built-in demo, generated into the cache on first use."""
    if cfg.data.root == "demo":
        from dfu_tui.data.demo import ensure_demo_dataset

        return ensure_demo_dataset(
            cfg.demo.patients, cfg.demo.seed, cfg.data.metadata_file, cfg.demo.planted_leak
        )
    root = Path(cfg.data.root).expanduser()
    if not root.is_dir():
        raise InputError(f"{cfg.source}: data.root: dataset folder not found: {root}")
    return root


def crop_cache_dir(cfg: DatasetSpec) -> Path:
    """Where crops are cached: `data.cache_dir`, or the user's cache directory."""
    base = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else user_cache_dir()
    return private_dir(base / "crops")


def load_dataset(
    cfg: DatasetSpec,
    modalities: list[str] | None = None,
    progress: Progress | None = None,
    labels_optional: bool = False,
) -> Dataset:
    """Load the metadata and the crops of the chosen (or given) image modalities
    (`labels_optional`: visits to predict, whose phase may be unknown, -1)."""
    root = resolve_root(cfg)
    meta_path = root / cfg.data.metadata_file
    table = read_metadata(
        meta_path,
        cfg.data.label_column,
        cfg.data.patient_column,
        [*cfg.data.exclude_columns, *cfg.features.exclude],
        cfg.data.use_free_text,
        history=cfg.features.history,
        where=f"{cfg.source}: features.exclude",
        labels_optional=labels_optional,
    )
    dataset = Dataset(root=root, metadata_path=meta_path, table=table)
    wanted = cfg.image_modalities if modalities is None else modalities
    problems = []
    for m in wanted:
        folder = root / cfg.data.folders.get(m, DEFAULT_FOLDERS[m])
        if not folder.is_dir():
            problems.append(f"{folder}: image folder for '{m}' not found")
        camera = CAMERA_OF[m]
        box_path = root / cfg.data.box_files.get(camera, DEFAULT_BOX_FILES[camera])
        if not box_path.is_file():
            problems.append(f"{box_path}: bounding-box CSV for the {camera} camera not found")
    if problems:
        raise InputError(problems)
    cache = crop_cache_dir(cfg)
    for m in wanted:
        dataset.crops[m] = load_modality_crops(cfg, root, m, table, cache, progress)
    return dataset


def _fingerprint(
    modality: str, size: int, files: list[ImageFile], box_path: Path, table: SampleTable
) -> str:
    h = hashlib.sha256(f"v{CROP_CACHE_VERSION}|{modality}|{size}".encode())
    for f in files:
        h.update(f"|{f.name}:{f.size}:{f.mtime_ns}".encode())
    try:
        h.update(box_path.read_bytes())
    except OSError as exc:
        raise InputError(f"{box_path}: cannot read bounding-box CSV ({exc.strerror})") from None
    # In table order: crops point at rows, so a re-ordered file must not reuse a cache.
    h.update(repr(table.keys).encode())
    return h.hexdigest()[:20]


def load_modality_crops(
    cfg: DatasetSpec,
    root: Path,
    modality: str,
    table: SampleTable,
    cache: Path,
    progress: Progress | None = None,
) -> ModalityCrops:
    """The crops of one modality, from the cache when its fingerprint matches, else decoded."""
    folder = root / cfg.data.folders.get(modality, DEFAULT_FOLDERS[modality])
    camera = CAMERA_OF[modality]
    box_path = root / cfg.data.box_files.get(camera, DEFAULT_BOX_FILES[camera])
    files, unusable = list_images(folder)
    size = cfg.data.image_size
    fp = _fingerprint(modality, size, files, box_path, table)
    cache_file = cache / f"{modality}-{size}px-{fp}.npz"
    crops = None
    if cache_file.is_file():
        try:
            cached = _read_cache(cache_file, modality)
            if len(cached.crops) == len(cached.sample_index) == len(cached.files):
                crops = cached
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            pass
        if crops is None:
            cache_file.unlink(missing_ok=True)  # unreadable or inconsistent cache: rebuild it
    if crops is None:
        crops = _build_crops(
            modality, folder, files, images.read_boxes(box_path), table, size, progress
        )
        _write_cache(cache_file, crops)
    if unusable:  # listed afresh each load: never taken from the cache
        crops.counts["unreadable file or link"] = len(unusable)
        crops.skipped.extend(unusable)
    return crops


@dataclass(frozen=True)
class ImageFile:
    """A PNG of an image folder, with what its fingerprint needs."""

    name: str
    size: int
    mtime_ns: int


def list_images(folder: Path) -> tuple[list[ImageFile], list[str]]:
    """The readable regular `.png` files of a folder (symlinks followed), by name, and one
    line per `.png` entry that cannot be used (a dangling link, a link loop, an entry that
    cannot be read, a folder named like an image): skipped and named, never fatal."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the image folder ({exc.strerror})") from None
    files, unusable = [], []
    for entry in entries:
        if not entry.name.lower().endswith(".png"):
            continue
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            unusable.append(f"{entry.path}: unreadable ({exc.strerror}), skipped")
            continue
        if not stat.S_ISREG(st.st_mode):
            unusable.append(f"{entry.path}: not a regular file, skipped")
            continue
        if not os.access(entry.path, os.R_OK):
            unusable.append(f"{entry.path}: not readable (permission denied), skipped")
            continue
        files.append(ImageFile(entry.name, st.st_size, st.st_mtime_ns))
    return files, unusable


def _build_crops(
    modality: str,
    folder: Path,
    files: list[ImageFile],
    boxes: images.BoxTable,
    table: SampleTable,
    size: int,
    progress: Progress | None,
) -> ModalityCrops:
    index: dict[tuple[int, int, int], list[int]] = {}
    for i, key in enumerate(table.keys):  # a repeated key's images feed each of its samples
        index.setdefault(key, []).append(i)
    camera_letter = CAMERAS[CAMERA_OF[modality]].letter
    counts: Counter[str] = Counter()
    skipped = list(boxes.skipped)
    counts["bad box row"] += len(boxes.skipped)
    crops: list[np.ndarray] = []
    rows: list[int] = []
    names: list[str] = []
    for done, entry in enumerate(files, start=1):
        if progress is not None:
            progress(modality, done, len(files))
        parsed = parse_image_name(entry.name)
        if parsed is None:
            counts["name not in convention"] += 1
            skipped.append(f"{folder / entry.name}: name does not follow the convention, skipped")
            continue
        if parsed.camera != camera_letter:
            counts["wrong camera letter"] += 1
            skipped.append(
                f"{folder / entry.name}: camera letter {parsed.camera} in a "
                f"{CAMERA_OF[modality]} folder, skipped"
            )
            continue
        targets = [
            (row, b)
            for b in boxes.boxes_for(entry.name)
            for row in index.get((parsed.patient, parsed.appt, b.dfu), [])
        ]
        if not boxes.boxes_for(entry.name):
            counts["no bounding box"] += 1
            continue
        if not targets:
            counts["no metadata row"] += 1
            continue
        try:
            frame = images.decode_png(folder / entry.name)
        except images.ImageTooLarge as exc:
            counts["image too large"] += 1
            skipped.append(f"{folder / entry.name}: {exc}, skipped")
            continue
        except images.BAD_IMAGE_ERRORS as exc:
            counts["corrupt image"] += 1
            skipped.append(f"{folder / entry.name}: corrupt or truncated PNG, skipped ({exc})")
            continue
        height, width = frame.shape[:2]
        for row, box in targets:
            if not images.box_inside(box, width, height):
                counts["box outside image"] += 1
                skipped.append(
                    f"{boxes.path}: row {box.row}: box ({box.xmin}, {box.ymin})-({box.xmax}, "
                    f"{box.ymax}) outside {entry.name} ({width}x{height}), skipped"
                )
                continue
            crops.append(images.crop_resize_pad(frame, box, size))
            rows.append(row)
            names.append(entry.name)
    stack = np.stack(crops) if crops else np.zeros((0, size, size, 3), dtype=np.uint8)
    return ModalityCrops(
        modality=modality,
        crops=stack,
        sample_index=np.array(rows, dtype=np.int64),
        files=np.array(names, dtype=str),
        skipped=skipped,
        counts={k: v for k, v in counts.items() if v},
    )


def _write_cache(path: Path, crops: ModalityCrops) -> None:
    reasons = np.array(list(crops.counts), dtype=str)
    amounts = np.array(list(crops.counts.values()), dtype=np.int64)

    def write(fh: object) -> None:
        np.savez(
            fh,  # type: ignore[arg-type]
            crops=crops.crops,
            sample_index=crops.sample_index,
            files=crops.files,
            skipped=np.array(crops.skipped, dtype=str),
            reasons=reasons,
            amounts=amounts,
        )

    atomic_write(path, write)


def _read_cache(path: Path, modality: str) -> ModalityCrops:
    with np.load(path, allow_pickle=False) as npz:
        return ModalityCrops(
            modality=modality,
            crops=npz["crops"],
            sample_index=npz["sample_index"],
            files=npz["files"],
            skipped=[str(s) for s in npz["skipped"]],
            counts={str(k): int(v) for k, v in zip(npz["reasons"], npz["amounts"], strict=True)},
            from_cache=True,
        )


def _bytes_or_missing(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b"<missing>"


def data_fingerprint(cfg: DatasetSpec, modalities: list[str] | None = None) -> str:
    """A hash of the dataset a config reads: metadata and box files' bytes, image listings."""
    root = resolve_root(cfg)
    h = hashlib.sha256()
    meta = root / cfg.data.metadata_file
    h.update(_bytes_or_missing(meta))
    wanted = cfg.image_modalities if modalities is None else modalities
    for m in wanted:
        camera = CAMERA_OF[m]
        box = root / cfg.data.box_files.get(camera, DEFAULT_BOX_FILES[camera])
        h.update(_bytes_or_missing(box))
        folder = root / cfg.data.folders.get(m, DEFAULT_FOLDERS[m])
        if folder.is_dir():
            for f in list_images(folder)[0]:
                h.update(f"{m}/{f.name}:{f.size}:{f.mtime_ns}".encode())
    return h.hexdigest()[:16]


def image_counts(cfg: DatasetSpec) -> tuple[int, dict[str, int]] | None:
    """(samples, samples with at least one image named for them, per image modality): a
    quick look for the launch form, from the metadata and the file names only (nothing is
    decoded; boxes are not checked, so a run may use a few less).

    None for the built-in demo before it exists: a look generates nothing (the launch does,
    with its progress in the monitor)."""
    if cfg.data.root == "demo":
        from dfu_tui.data.demo import demo_complete, demo_path

        demo = demo_path(cfg.demo.patients, cfg.demo.seed, cfg.demo.planted_leak)
        if not demo_complete(demo, cfg.data.metadata_file):
            return None
    table = load_dataset(cfg, modalities=[]).table
    keys = set(table.keys)
    root = resolve_root(cfg)
    out = {}
    for m in DEFAULT_FOLDERS:
        folder = root / cfg.data.folders.get(m, DEFAULT_FOLDERS[m])
        named: set[tuple[int, int, int]] = set()
        if folder.is_dir():
            for f in list_images(folder)[0]:
                parsed = parse_image_name(f.name)
                if parsed is not None:
                    named.add((parsed.patient, parsed.appt, parsed.dfu))
        out[m] = sum(1 for k in table.keys if k in named & keys)
    return len(table.keys), out
