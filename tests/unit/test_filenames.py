"""The image file-name convention."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dfu_tui.data.filenames import ImageName, parse_image_name

names = st.builds(
    ImageName,
    n=st.integers(0, 10**6),
    patient=st.integers(0, 999),
    appt=st.integers(0, 99),
    dfu=st.integers(0, 9),
    debridement=st.sampled_from("BA"),
    camera=st.sampled_from("DT"),
    angle=st.sampled_from("LMR"),
    view=st.sampled_from("WZ"),
)


@given(names)
def test_every_valid_name_parses_back(name: ImageName) -> None:
    assert parse_image_name(name.filename()) == name


def test_documented_example() -> None:
    parsed = parse_image_name("10_P257001ADMW.png")
    assert parsed == ImageName(10, 257, 0, 1, "A", "D", "M", "W")
    assert parsed.stem == "P257001ADMW"


@given(names, st.text(min_size=1, max_size=1), st.integers(0, 11))
def test_any_insertion_into_the_fixed_part_is_rejected(
    name: ImageName, junk: str, where: int
) -> None:
    prefix, stem = name.filename().split("_", 1)
    broken = f"{prefix}_{stem[:where]}{junk}{stem[where:]}"
    assert parse_image_name(broken) is None


def test_invalid_names() -> None:
    for bad in [
        "P257001ADMW.png",  # no number
        "10_P25701ADMW.png",  # too few digits
        "10_P257001XDMW.png",  # debridement letter
        "10_P257001ADQW.png",  # angle letter
        "10_P257001ADMW.jpg",
        "10_P257001ADMW.png.bak",
        "",
    ]:
        assert parse_image_name(bad) is None, bad


def test_cameras_come_from_the_one_table() -> None:
    """File-name parsing knows exactly the cameras of `schema.CAMERAS` (by their letters),
    and every image modality's camera is one of them."""
    import string

    from dfu_tui.data.filenames import parse_image_name
    from dfu_tui.data.schema import CAMERA_OF, CAMERAS, DEFAULT_BOX_FILES

    letters = {c.letter for c in CAMERAS.values()}
    for letter in string.ascii_uppercase:
        parsed = parse_image_name(f"7_P01203{1}B{letter}MW.png")
        assert (parsed is not None) == (letter in letters), letter
    assert set(CAMERA_OF.values()) <= set(CAMERAS) and set(DEFAULT_BOX_FILES) == set(CAMERAS)
