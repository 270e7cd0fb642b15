"""Bounding boxes, wound crops (crop, resize keeping aspect, pad to square) and PNG decoding."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from dfu_tui.data.filenames import parse_image_name
from dfu_tui.data.metadata import parse_csv, read_csv_text
from dfu_tui.errors import InputError

REQUIRED_BOX_COLUMNS = ("Filename", "DFU#", "Xmin", "Ymin", "Xmax", "Ymax")

# Counts every PNG decode; the cache tests use it to show a second load decodes nothing.
decode_count = 0


@dataclass(frozen=True)
class Box:
    """One wound's box in a full frame, in pixel corners."""

    dfu: int
    number: int
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    row: int  # line number in the box CSV, for messages


@dataclass
class BoxTable:
    """The boxes of one camera, looked up by file name or by the name's stem."""

    path: Path
    by_name: dict[str, list[Box]]
    by_stem: dict[str, list[Box]]
    skipped: list[str]

    def boxes_for(self, filename: str) -> list[Box]:
        """The boxes of an image; the map and RGB images of a camera share them by stem."""
        if filename in self.by_name:
            return self.by_name[filename]
        parsed = parse_image_name(filename)
        return self.by_stem.get(parsed.stem, []) if parsed else []


def read_boxes(path: Path) -> BoxTable:
    """Read a bounding-box CSV; rows with unusable boxes are skipped and named."""
    frame = parse_csv(read_csv_text(path, "bounding-box CSV"), path, "bounding-box CSV")
    missing = [c for c in REQUIRED_BOX_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"expected {', '.join(REQUIRED_BOX_COLUMNS)}"
        )
    numeric = ["DFU#", "Xmin", "Ymin", "Xmax", "Ymax"]
    has_number = "Bounding Box Number" in frame.columns
    if has_number:
        numeric.append("Bounding Box Number")
    values = frame[numeric].apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    by_name: dict[str, list[Box]] = {}
    by_stem: dict[str, list[Box]] = {}
    skipped: list[str] = []
    names = frame["Filename"].str.strip().to_numpy()
    rows = values.to_numpy()
    for i, (name, vals) in enumerate(zip(names, rows, strict=True)):
        line = i + 2
        if np.isnan(vals[:5]).any():
            skipped.append(f"{path}: row {line}: box skipped, non-numeric DFU# or corner")
            continue
        if not np.isfinite(vals[:5]).all():  # "inf", 1e400
            skipped.append(f"{path}: row {line}: box skipped, infinite DFU# or corner")
            continue
        dfu, xmin, ymin, xmax, ymax = (int(v) for v in vals[:5])
        if xmin >= xmax or ymin >= ymax:
            skipped.append(
                f"{path}: row {line}: box skipped, inverted or empty "
                f"(xmin {xmin}, xmax {xmax}, ymin {ymin}, ymax {ymax}); expected min < max"
            )
            continue
        number = int(vals[5]) if has_number and np.isfinite(vals[5]) else 1
        box = Box(dfu, number, xmin, ymin, xmax, ymax, line)
        by_name.setdefault(name, []).append(box)
        parsed = parse_image_name(name)
        if parsed is not None:
            by_stem.setdefault(parsed.stem, []).append(box)
    return BoxTable(path, by_name, by_stem, skipped)


#: A camera frame is at most a few megapixels; a larger PNG is refused before it is decoded
#: (a 12000x12000 image would take over 400 MB as RGB, 2 GB while decoding).
MAX_IMAGE_PIXELS = 40_000_000


class ImageTooLarge(ValueError):
    """A PNG whose header declares more pixels than a camera frame can have."""


def decode_png(path: Path) -> np.ndarray:
    """Decode a PNG into an RGB uint8 array (H, W, 3); 16-bit and float maps are rescaled.

    Raises OSError or ValueError for a corrupt or truncated file.
    """
    global decode_count
    decode_count += 1
    with warnings.catch_warnings():
        # PIL warns (on stderr, raw) between its bomb limit and twice it: one skip line here
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except Image.DecompressionBombWarning as exc:
            raise ImageTooLarge(f"{exc}"[:200]) from None
    with opened as img:
        width, height = img.size  # from the header: nothing decoded yet
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLarge(
                f"{width}x{height} pixels, above the {MAX_IMAGE_PIXELS // 1_000_000} "
                "megapixel limit for a camera frame"
            )
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
            gray = scaled.astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def crop_resize_pad(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Crop `box` from `frame`, resize so its longer side is `size` (aspect kept), pad to square.

    The padding is black and split evenly on both sides of the shorter dimension.
    """
    patch = frame[box.ymin : box.ymax, box.xmin : box.xmax]
    h, w = patch.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(
        Image.fromarray(patch).resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.uint8
    )
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def box_inside(box: Box, width: int, height: int) -> bool:
    """Whether the box lies within a frame of the given size."""
    return box.xmin >= 0 and box.ymin >= 0 and box.xmax <= width and box.ymax <= height


BAD_IMAGE_ERRORS = (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)
