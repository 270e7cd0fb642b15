"""The run's event log, one line per event worth one (`runs.describe`), wrapped."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widgets import RichLog, Static

from dfu_tui.runs.describe import describe
from dfu_tui.runs.events import Event
from dfu_tui.tui.format import for_rich, line_markup
from dfu_tui.tui.panels.base import MonitorView, Panel


def event_line(e: Event) -> str | None:
    """One markup line of the event log (what `runs.describe` says, its figures left to the
    panels), or None for events not worth a line."""
    lines = [line_markup(line) for line in describe(e) if not line.detail]
    return "\n".join(lines) or None


class EventsPanel(Panel):
    DEFAULT_CSS = """
    EventsPanel { column-span: 2; }
    EventsPanel #log { height: 10; scrollbar-gutter: stable; }
    """

    _logged = 0  # events of the run's log written so far

    def compose(self) -> ComposeResult:
        yield Static("[b]Events[/b]", classes="panel-title")
        # min_width: wrap at the log's own width (RichLog's default, 78, runs past it)
        yield RichLog(id="log", markup=True, wrap=True, max_lines=500, min_width=20)

    _view: MonitorView | None = None
    _width = 0

    def on_resize(self) -> None:
        """A log's lines are wrapped when written: at a new width they are written again
        (once the log has its new size), so no line loses its middle; the scrollbar's
        column is kept free from the start (`scrollbar-gutter: stable`), so no line runs
        under it when it appears."""
        self.call_after_refresh(self._rewrap)

    def _rewrap(self) -> None:
        try:
            log = self.query_one("#log", RichLog)
        except NoMatches:
            return  # removed with its screen before this callback came (as in `on_mount`)
        if self._view is not None and log.scrollable_content_region.width != self._width:
            log.clear()
            self._logged = 0
            self.draw(self._view)

    def draw(self, view: MonitorView) -> None:
        """Every event of the run's log not written yet (also those that arrived while
        another screen was shown)."""
        log = self.query_one("#log", RichLog)
        self._view, self._width = view, log.scrollable_content_region.width
        events = view.state.log
        for e in events[self._logged :]:
            line = event_line(e)
            if line:
                log.write(for_rich(line))
        self._logged = len(events)
