"""What the dashboard's full screens share: the context they read, and the keys of a run's
screens (`?` for help is the app's own binding, shown on every screen)."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from dfu_tui.runs.state import RunState
from dfu_tui.tui.messages import Context


class DfuScreen(Screen[None]):
    """A full screen of the dashboard."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context


class RunScreen(DfuScreen):
    """A screen about one run; escape goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, context: Context, run_id: str) -> None:
        super().__init__(context)
        self.run_id = run_id

    @property
    def state(self) -> RunState:
        return self.context.catalog.state(self.run_id)
