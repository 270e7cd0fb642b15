"""What the dashboard's full screens share: the context they read, and the keys of a run's
screens (`?` for help is the app's own binding, shown on every screen)."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from dfu_tui.runs.state import RunState
from dfu_tui.tui.messages import Context, RunsUpdated


class DfuScreen(Screen[None]):
    """A full screen of the dashboard.

    The app tells the visible screen what changed (`RunsUpdated`) and notes it in `missed`
    for the screens under it, which catch up the moment they are shown again.
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context
        self.missed: set[str] = set()  # runs that changed while this screen was hidden

    def on_screen_resume(self) -> None:
        if self.missed and self.is_mounted:  # before its mount, it reads everything then
            changed, self.missed = self.missed, set()
            self.post_message(RunsUpdated(changed))


class RunScreen(DfuScreen):
    """A screen about one run; escape goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, context: Context, run_id: str) -> None:
        super().__init__(context)
        self.run_id = run_id

    @property
    def state(self) -> RunState:
        return self.context.catalog.state(self.run_id)
