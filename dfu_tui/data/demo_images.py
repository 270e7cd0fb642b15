"""The demo's camera shots: smooth skin, wounds drawn as ellipses inside their boxes, each
modality's signal of the phase mixed with its noise (`IMAGE_NOISE`). A new camera or
modality: its frame and box sizes, its noise and how `frames` draws it, here."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Full frames are smaller than the real cameras' (1280x720 depth, 1080x1440 thermal) to keep
# the dataset light; wound boxes keep the real sizes, so crops are small as in the real data.
FRAME = {"depth": (144, 256), "thermal": (240, 180)}  # (height, width)
BOX_MEDIAN = {"depth": (55, 56), "thermal": (63, 82)}  # (width, height)
# Noise on the phase seen by each image modality: larger is a weaker signal.
IMAGE_NOISE = {"depth_rgb": 1.2, "depth_map": 2.5, "thermal_rgb": 1.1, "thermal_map": 1.0}


def _blur_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: random values on a coarse grid, enlarged."""
    h, w = shape
    small = rng.uniform(-1, 1, (h // cell + 2, w // cell + 2)).astype(np.float32)
    big = np.asarray(
        Image.fromarray(small, mode="F").resize((w + cell, h + cell), Image.Resampling.BILINEAR)
    )
    return big[:h, :w]


def _ellipse(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = box
    yy, xx = np.ogrid[:h, :w]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2.6, (y1 - y0) / 2.6
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1.0


def frames(
    rng: np.random.Generator,
    camera: str,
    signal: dict[str, float],
    boxes: list[tuple[int, ...]],
    skin: float,
) -> dict[str, np.ndarray]:
    """The map and RGB images of one camera shot, with wounds drawn inside `boxes`."""
    shape = FRAME[camera]
    base = skin + 18 * _blur_noise(rng, shape, 24)
    if camera == "thermal":
        heat = base.copy()
        rgb_heat = base.copy()
        for box in boxes:
            mask = _ellipse(shape, box)  # type: ignore[arg-type]
            heat[mask] += 45 - 22 * signal["thermal_map"] + rng.normal(0, 6, mask.sum())
            rgb_heat[mask] += 45 - 22 * signal["thermal_rgb"] + rng.normal(0, 6, mask.sum())
        t = np.clip(rgb_heat, 0, 255) / 255.0
        rgb = np.stack([t, 1 - np.abs(2 * t - 1), 1 - t], axis=2) * 255
        return {
            "thermal_map": np.clip(heat, 0, 255).astype(np.uint8),
            "thermal_rgb": np.clip(rgb, 0, 255).astype(np.uint8),
        }
    depth = 120 + 40 * np.linspace(0, 1, shape[1], dtype=np.float32)[None, :] + base * 0.2
    tone = np.array([205, 160, 130], dtype=np.float32)
    rgb = np.repeat(base[:, :, None] * 0.1, 3, axis=2) + tone
    for box in boxes:
        mask = _ellipse(shape, box)  # type: ignore[arg-type]
        depth[mask] += 25 + 12 * signal["depth_map"] + rng.normal(0, 8, mask.sum())
        s = float(np.clip(signal["depth_rgb"], -0.5, 2.5)) / 2.0
        wound = np.array([190 - 10 * s, 40 + 110 * s, 45 + 80 * s], dtype=np.float32)
        rgb[mask] = wound + rng.normal(0, 14, (mask.sum(), 3))
    return {
        "depth_map": np.clip(depth, 0, 255).astype(np.uint8),
        "depth_rgb": np.clip(rgb, 0, 255).astype(np.uint8),
    }


def random_box(
    rng: np.random.Generator, camera: str, taken: list[tuple[int, ...]]
) -> tuple[int, int, int, int]:
    h, w = FRAME[camera]
    bw0, bh0 = BOX_MEDIAN[camera]
    for _ in range(20):
        bw = int(np.clip(rng.normal(bw0, bw0 * 0.25), 24, w // 2))
        bh = int(np.clip(rng.normal(bh0, bh0 * 0.25), 24, h // 2))
        x0, y0 = int(rng.integers(4, w - bw - 4)), int(rng.integers(4, h - bh - 4))
        box = (x0, y0, x0 + bw, y0 + bh)
        if all(box[2] < t[0] or box[0] > t[2] or box[3] < t[1] or box[1] > t[3] for t in taken):
            return box
    return box
