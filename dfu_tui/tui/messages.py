"""What the dashboard's screens ask of the app, and what the app tells the screens.

Screens never call the app: they post one of these requests and the app handles it
(`on_open_run`, ...). The app's run watcher tells the visible screen what changed with
`RunsUpdated`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from dfu_tui.runs.catalog import RunCatalog


@dataclass(frozen=True)
class Context:
    """What every screen reads: the runs (kept current by the app's watcher) and the clock."""

    catalog: RunCatalog
    clock: Callable[[], float]


class RunRequest(Message):
    """A request about one run."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class OpenRun(RunRequest):
    """Open the run's monitor."""


class OpenCompare(RunRequest):
    """Open the run's comparison screen."""


class StopRun(RunRequest):
    """Stop the run (after the user confirms)."""


class ResumeRun(RunRequest):
    """Resume the run."""


class ExportRun(RunRequest):
    """Export the run to CSV in its directory."""


class LabelRun(RunRequest):
    """Name and tag the run (asks for them)."""


class ArchiveRun(RunRequest):
    """Move the run into the runs folder's trash (after the user confirms)."""


class ReportRun(RunRequest):
    """Write the run's HTML report into its directory."""


class FitRun(RunRequest):
    """Fit the final model of a completed run (`dfu-tui fit --detach`)."""


class OpenFoldDetail(RunRequest):
    """Open one fold of the run in detail."""

    def __init__(self, run_id: str, fold: int) -> None:
        super().__init__(run_id)
        self.fold = fold


#: The requests a key can make about a screen's run, by the name its binding gives:
#: `Binding("s", "run('stop')", "Stop")`.
RUN_REQUESTS: dict[str, type[RunRequest]] = {
    "open": OpenRun,
    "compare": OpenCompare,
    "stop": StopRun,
    "resume": ResumeRun,
    "export": ExportRun,
    "label": LabelRun,
    "archive": ArchiveRun,
    "report": ReportRun,
    "fit": FitRun,
}


class CompareRuns(Message):
    """Put runs side by side (the runs marked in the runs list)."""

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids


class LaunchRun(Message):
    """Start a run from a config with overrides (one run per form state)."""

    def __init__(
        self, config: Path, overrides: list[str], jobs: int, labels: list[str] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.overrides = overrides
        self.jobs = jobs
        self.labels = labels or []  # --name / --tag arguments


class LaunchEnded(Message):
    """Sent to the launch form when a launch it asked for is over (started or not)."""


class RunsChanged(Message):
    """The watcher has read something new (the app drains the catalog's pending updates).

    Pending pokes coalesce: one handled message applies everything read so far."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsChanged)


class RunsUpdated(Message):
    """Sent to the visible screen: these runs changed (their states are already applied)."""

    def __init__(self, changed: set[str]) -> None:
        super().__init__()
        self.changed = changed
