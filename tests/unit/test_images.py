"""Bounding boxes and crop geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfu_tui.data.images import Box, box_inside, crop_resize_pad, read_boxes
from dfu_tui.errors import InputError

HEADER = (
    "Filename,Patient#,Appt#,DFU#,DebriStat,Camera,Angle,Bounding Box Number,Xmin,Ymin,Xmax,Ymax\n"
)


class TestCropGeometry:
    def test_wide_box_is_padded_top_and_bottom(self) -> None:
        frame = np.zeros((50, 80, 3), dtype=np.uint8)
        frame[10:20, 30:50] = 200  # a 20 x 10 wound
        out = crop_resize_pad(frame, Box(1, 1, 30, 10, 50, 20, 2), 32)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        rows = np.flatnonzero(out[:, :, 0].max(axis=1) > 0)
        assert (rows.min(), rows.max()) == (8, 23)  # 16 rows of content, centred
        assert np.all(out[8:24, :, 0] == 200)

    def test_tall_box_is_padded_left_and_right(self) -> None:
        frame = np.full((60, 60, 3), 90, dtype=np.uint8)
        out = crop_resize_pad(frame, Box(1, 1, 0, 0, 15, 60, 2), 64)
        cols = np.flatnonzero(out[:, :, 0].max(axis=0) > 0)
        assert (cols.min(), cols.max()) == (24, 39)
        assert out[:, :24].max() == 0 and out[:, 40:].max() == 0

    def test_box_inside(self) -> None:
        assert box_inside(Box(1, 1, 0, 0, 10, 10, 2), 10, 10)
        assert not box_inside(Box(1, 1, 5, 5, 11, 9, 2), 10, 10)
        assert not box_inside(Box(1, 1, -1, 0, 5, 5, 2), 10, 10)


class TestBoxFile:
    def test_several_boxes_and_stem_lookup(self, tmp_path: Path) -> None:
        path = tmp_path / "b.csv"
        path.write_text(
            HEADER
            + "14_P003001BTMW.png,3,0,1,B,T,MW,1,136,157,195,204\n"
            + "14_P003001BTMW.png,003,00,2,B,T,MW,2,105,38,171,90\n",
            encoding="utf-8",
        )
        table = read_boxes(path)
        boxes = table.boxes_for("14_P003001BTMW.png")
        assert [(b.dfu, b.number) for b in boxes] == [(1, 1), (2, 2)]
        # A map image of the same shot with another leading number finds the same boxes.
        assert table.boxes_for("99_P003001BTMW.png") == boxes

    def test_inverted_box_skipped_and_named(self, tmp_path: Path) -> None:
        path = tmp_path / "b.csv"
        path.write_text(HEADER + "1_P001001BDMW.png,1,0,1,B,D,MW,1,50,10,40,20\n")
        table = read_boxes(path)
        assert table.boxes_for("1_P001001BDMW.png") == []
        (line,) = table.skipped
        assert str(path) in line and "row 2" in line and "xmin 50, xmax 40" in line

    def test_missing_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "b.csv"
        path.write_text("Filename,DFU#,Xmin,Ymin\n1_P001001BDMW.png,1,1,1\n")
        with pytest.raises(InputError) as info:
            read_boxes(path)
        (line,) = info.value.problems
        assert str(path) in line and "'Xmax', 'Ymax'" in line


def test_a_decompression_bomb_is_one_skip_not_a_raw_warning(tmp_path, recwarn) -> None:
    """A PNG whose header claims 10000 x 10000 pixels (above PIL's bomb limit, below twice
    it): PIL's warning is not printed raw; the image is refused as too large."""
    import struct
    import zlib

    import pytest

    from dfu_tui.data.images import ImageTooLarge, decode_png

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(ImageTooLarge):
        decode_png(path)
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]
