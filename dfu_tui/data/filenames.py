"""The clinic's image file-name convention.

`{n}_P{patient:03d}{appt:02d}{dfu}{B|A}{D|T}{L|M|R}{W|Z}.png`
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dfu_tui.data.schema import CAMERAS

_LETTERS = "".join(re.escape(c.letter) for c in CAMERAS.values())
_NAME = re.compile(
    r"^(?P<n>\d+)_P(?P<patient>\d{3})(?P<appt>\d{2})(?P<dfu>\d)"
    rf"(?P<debridement>[BA])(?P<camera>[{_LETTERS}])(?P<angle>[LMR])(?P<view>[WZ])\.png$"
)


@dataclass(frozen=True, order=True)
class ImageName:
    """The parts of one image file name."""

    n: int
    patient: int
    appt: int
    dfu: int
    debridement: str  # B(efore) or A(fter) debridement
    camera: str  # the camera's letter (`schema.CAMERAS`): D(epth) or T(hermal)
    angle: str  # L(eft), M(iddle), R(ight)
    view: str  # W(ide) or Z(oomed)

    @property
    def stem(self) -> str:
        """The name without the arbitrary leading number, shared by a camera's map and RGB."""
        return (
            f"P{self.patient:03d}{self.appt:02d}{self.dfu}"
            f"{self.debridement}{self.camera}{self.angle}{self.view}"
        )

    def filename(self) -> str:
        """The file name this object was parsed from."""
        return f"{self.n}_{self.stem}.png"


def parse_image_name(name: str) -> ImageName | None:
    """Parse a file name; None when it does not follow the convention."""
    m = _NAME.match(name)
    if m is None:
        return None
    g = m.groupdict()
    return ImageName(
        n=int(g["n"]),
        patient=int(g["patient"]),
        appt=int(g["appt"]),
        dfu=int(g["dfu"]),
        debridement=g["debridement"],
        camera=g["camera"],
        angle=g["angle"],
        view=g["view"],
    )
