"""Small widgets of our own where Textual's rely on colour alone."""

from __future__ import annotations

from textual.widgets import Checkbox

ON, OFF = "✔", " "


class Tick(Checkbox):
    """A checkbox whose state reads without colour (a low-colour SSH terminal, a
    colour-blind reader): a tick when on, blank when off. Textual's draws the same `X` in
    both states and tells them apart by colour only."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        return ON if self.value else OFF
