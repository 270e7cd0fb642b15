"""Small widgets of our own: where Textual's rely on colour alone, or redo work on every
event."""

from __future__ import annotations

from typing import Any

from textual import widgets
from textual.visual import VisualType
from textual.widgets import Checkbox

ON, OFF = "✔", " "


class Tick(Checkbox):
    """A checkbox whose state reads without colour (a low-colour SSH terminal, a
    colour-blind reader): a tick when on, blank when off. Textual's draws the same `X` in
    both states and tells them apart by colour only."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        return ON if self.value else OFF


class Footer(widgets.Footer):
    """Textual's footer, composed again only when the keys it shows changed.

    Textual's recomposes (every key a new widget) each time the screen's bindings are
    refreshed: on a screen's activation and after every focus or action-state change, three
    to five times while the monitor or compare opens, 10-20 ms each on the UI thread. Here
    a refresh that leaves the shown keys (key, label, action, enabled, tooltip) as they were
    composes nothing."""

    _shown: Any = None

    def _keys(self) -> Any:
        return (
            tuple(
                (binding.key, binding.description, binding.action, enabled, tooltip)
                for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
                if binding.show
            ),
            self.compact,
            self.show_command_palette,
        )

    async def recompose(self) -> None:
        keys = self._keys() if self.is_attached else None
        if keys is not None and keys == self._shown:
            return
        self._shown = keys
        await super().recompose()


def update_text(widget: widgets.Static, text: VisualType) -> None:
    """`widget.update(text)`, laying the screen out again only when the text's height
    changed. Textual lays the whole screen out after every update (the text may take
    another height), and a layout repaints every scrollbar on it: the monitor's header
    (elapsed time, heartbeat) and a plot's legend sent the folds table's scrollbar over and
    over while a run streamed (1.6 of 2.5 KB/s over SSH at 80x24). Here the height is
    measured as Textual measures it (the text wrapped at the widget's width) before and
    after: the same, and the widget alone is repainted. A widget as wide as its text
    (`width: auto`) is always laid out: its width follows the text."""
    width = widget.content_size.width
    rules = widget.styles.get_rules()
    sized = widget.styles.width is not None and widget.styles.width.is_auto
    before = widget.visual.get_height(rules, width) if width and not sized else None
    widget.update(text, layout=False)
    if before is None or widget.visual.get_height(rules, width) != before:
        widget.refresh(layout=True)
