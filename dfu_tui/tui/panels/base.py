"""What every monitor panel shares: the view it draws from, and updates only on change."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Static

from dfu_tui.engine.records import FoldResult
from dfu_tui.runs.catalog import RunDocs
from dfu_tui.runs.figures import fused_index as _fused
from dfu_tui.runs.state import RunState
from dfu_tui.tui.widgets import update_text


@dataclass(frozen=True)
class MonitorView:
    """What the monitor shows now: the run's state and documents, and the user's selection
    (`fold`, `epoch`: None follows the latest)."""

    run_id: str
    state: RunState
    docs: RunDocs
    fold: int | None
    epoch: int | None
    clock: Callable[[], float]

    @property
    def fused(self) -> int:
        """The combination shown as 'fused': the one with the most modalities."""
        return _fused(self.state.combinations)

    def shown_fold(self) -> FoldResult | None:
        """The selected fold's result, or the latest one's."""
        folds = sorted(self.state.fold_results, key=lambda f: f["fold"])
        if not folds:
            return None
        if self.fold is None:
            return folds[-1]
        return next((f for f in folds if f["fold"] == self.fold), folds[-1])


@runtime_checkable
class ViewSource(Protocol):
    """A screen the panels draw from (the monitor)."""

    def view(self) -> MonitorView: ...

    def plots_later(self) -> None: ...


class Panel(Vertical):
    """A bordered panel of the monitor. `draw(view)` computes what it shows; `set_text` and
    `set_rows` change a widget only when its content differs, so an event that changes
    nothing here repaints nothing here."""

    DEFAULT_CLASSES = "panel"
    DEFAULT_CSS = """
    Panel { height: auto; border: round $primary; padding: 0 1; }
    Panel .panel-title { color: $text-accent; }
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self._shown: dict[str, object] = {}  # selector -> what its widget shows

    def on_mount(self) -> None:
        """Drawn as soon as it is mounted: the monitor mounts its panels one by one, after
        its first frame, so that no single step holds the UI thread long."""
        screen = self.screen
        if isinstance(screen, ViewSource) and self.show(screen.view()):
            screen.plots_later()  # the screen's one pending plot redraw, with the others'

    def show(self, view: MonitorView) -> bool:
        """`draw(view)`, unless its widgets are gone (False): a monitor left while its panels
        mount removes them, children first, and the panel's own mount handler, or a redraw
        the screen had pending, may still come after."""
        try:
            self.draw(view)
        except NoMatches:
            return False
        return True

    def show_plots(self, view: MonitorView) -> None:
        """`draw_plots(view)`, unless its widgets are gone (as in `show`)."""
        with contextlib.suppress(NoMatches):
            self.draw_plots(view)

    def draw(self, view: MonitorView) -> None:
        raise NotImplementedError

    def draw_plots(self, view: MonitorView) -> None:
        """The panel's plots (drawn after the numbers are on screen)."""

    def set_text(self, selector: str, text: str) -> None:
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            update_text(self.query_one(selector, Static), text)

    def set_rows(
        self, selector: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        """A table's columns and rows, rebuilt only when either changed."""
        wanted = (tuple(columns), tuple(tuple(r) for r in rows))
        if self._shown.get(selector) == wanted:
            return
        self._shown[selector] = wanted
        table = self.query_one(selector, DataTable)
        if [str(c.label) for c in table.columns.values()] != list(columns):
            table.clear(columns=True)
            table.add_columns(*columns)
            table.fixed_columns = 1  # what a row is stays in view when the table scrolls
        table.clear()
        for row in rows:
            table.add_row(*row)
