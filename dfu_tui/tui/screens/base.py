"""What the dashboard's full screens share: the context they read, and the keys of a run's
screens (`?` for help is the app's own binding, shown on every screen)."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from dfu_tui.runs.state import RunState
from dfu_tui.tui.messages import RUN_REQUESTS, Context, RunsUpdated


class DfuScreen(Screen[None]):
    """A full screen of the dashboard.

    The app tells the visible screen what changed (`RunsUpdated`) and notes it in `missed`
    for the screens under it, which catch up the moment they are shown again.
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.context = context
        self.missed: set[str] = set()  # runs that changed while this screen was hidden

    def target_run(self) -> str | None:
        """The run this screen's keys and the palette's run commands act on (None: none)."""
        return None

    def action_run(self, request: str) -> None:
        """Every request about the screen's run through one action: a binding names it,
        `Binding("s", "run('stop')", "Stop")` (`messages.RUN_REQUESTS`)."""
        run_id = self.target_run()
        if run_id:
            self.post_message(RUN_REQUESTS[request](run_id))

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

    def target_run(self) -> str | None:
        return self.run_id

    @property
    def state(self) -> RunState:
        return self.context.catalog.state(self.run_id)
