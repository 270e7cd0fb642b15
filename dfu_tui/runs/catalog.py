"""Every run of a runs directory, kept current by reading only new event bytes."""

from __future__ import annotations

from pathlib import Path

from dfu_tui.runs.events import Event
from dfu_tui.runs.state import RunState, RunWatcher


class RunCatalog:
    """Watchers for the runs in a directory; `refresh` reports which runs changed."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.watchers: dict[str, RunWatcher] = {}
        self.new_events: dict[str, list[Event]] = {}

    def refresh(self) -> set[str]:
        """Pick up new runs and new events; return the ids of runs that changed."""
        changed: set[str] = set()
        if self.runs_dir.is_dir():
            for path in self.runs_dir.iterdir():
                if path.name not in self.watchers and (path / "events.jsonl").is_file():
                    self.watchers[path.name] = RunWatcher(path)
                    changed.add(path.name)
        self.new_events = {}
        for run_id, watcher in self.watchers.items():
            events = watcher.refresh()
            if events:
                self.new_events[run_id] = events
                changed.add(run_id)
        return changed

    def state(self, run_id: str) -> RunState:
        return self.watchers[run_id].state

    def path(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def ids(self) -> list[str]:
        """Run ids, newest first (ids start with their creation time)."""
        return sorted(self.watchers, reverse=True)
