"""Every run of a runs directory, kept current by reading only new event bytes.

Reading and applying are separate steps, so that a dashboard can read on a worker thread
(`read`: files only, no state touched) and apply on its UI thread (`apply`: memory only).
`refresh` does both, for callers with one thread.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from dfu_tui.runs.events import CHUNK, Event, EventReader
from dfu_tui.runs.labels import Labels, labels_path, read_labels
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import UNREADABLE, RunState

# Events after which a run's summary.json may have been written (or rewritten).
ENDINGS = ("run_finished", "run_failed", "run_cancelled")


#: What `dfu-tui fit` logs in the run when its model is written (the catalog reads the run's
#: documents again).
MODEL_WRITTEN = "final model written"


@dataclass
class RunDocs:
    """The documents of a run besides its events: resolved config, feature list, summary."""

    config: Config | None = None
    features: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    labels: Labels = field(default_factory=Labels)
    model: Path | None = None  # RUN/model when `dfu-tui fit` wrote a model there


@dataclass
class CatalogUpdate:
    """What one `read` found: new events per run (well-formed ones), damaged lines skipped
    per run, and the documents read again."""

    events: dict[str, list[Event]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    docs: dict[str, RunDocs] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # runs whose folder went (archived)
    unreadable: set[str] = field(default_factory=set)  # folders we may not look into
    back: set[str] = field(default_factory=set)  # ... and came back (restored)

    def merge(self, later: CatalogUpdate) -> None:
        """Add a later update to this one (events in order, the later documents)."""
        for run_id, events in later.events.items():
            self.events.setdefault(run_id, []).extend(events)
        for run_id, n in later.skipped.items():
            self.skipped[run_id] = self.skipped.get(run_id, 0) + n
        self.docs.update(later.docs)
        self.gone = (self.gone - later.back) | later.gone
        self.back = (self.back - later.gone) | later.back
        self.unreadable = later.unreadable


#: A run's JSON documents are kilobytes; more than this is not one of ours.
MAX_JSON_BYTES = 64 * 2**20


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when it is missing, damaged or not a regular file
    (a FIFO put in its place is never waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            doc = json.loads(fh.read(MAX_JSON_BYTES + 1)[:MAX_JSON_BYTES].decode("utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def read_docs(run: RunDir) -> RunDocs:
    """A run's documents as they are on disk now."""
    try:
        config: Config | None = load_config(run.config)
    except (InputError, OSError):
        config = None
    model = run.path / "model"
    return RunDocs(
        config,
        read_json(run.features),
        read_json(run.summary),
        read_labels(run.path),
        model if (model / "model.json").is_file() else None,
    )


def _mtime(path: Path) -> float:
    """A file's modification time, or 0 when it cannot be read."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def read_chunked(reader: EventReader) -> list[Event]:
    """Every new event of a log, chunk by chunk (`events.CHUNK`), with each run of
    consecutive heartbeats kept as its last one (all a state takes from them), so a long log
    costs bounded memory beyond what a state keeps (damaged lines: `reader.skipped`)."""
    good: list[Event] = []
    while True:
        new = reader.read_new(CHUNK)
        for e in new:
            if e["kind"] == "heartbeat" and good and good[-1]["kind"] == "heartbeat":
                good[-1] = e
            else:
                good.append(e)
        if not reader.more:
            return good


class RunCatalog:
    """Readers and states for the runs in a directory; `refresh` reports which changed."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._readers: dict[str, EventReader] = {}  # touched by `read` only
        # run -> whether `read` has found its feature list (written once its data loaded)
        self._documented: dict[str, bool] = {}
        self._labelled: dict[str, float] = {}  # run -> labels.json's mtime when last read
        self._gone: set[str] = set()  # runs whose folder went (touched by `read` only)
        self.removed: set[str] = set()  # ... as applied (touched by `apply` only)
        self.states: dict[str, RunState] = {}  # touched by `apply` only
        self.docs: dict[str, RunDocs] = {}
        self.new_events: dict[str, list[Event]] = {}

    def read(self) -> CatalogUpdate:
        """New runs and new events from disk, and the documents of runs that are new or
        just ended. Reads files; changes no state."""
        update = CatalogUpdate()
        present: set[str] = set()
        try:
            paths = sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []
        except OSError:  # a runs folder we may not list: nothing to show, nothing to crash
            paths = []
        for path in paths:
            run = RunDir(path)
            if not run.is_run():
                if run.unreadable():
                    update.unreadable.add(path.name)
                continue
            present.add(path.name)
            if path.name not in self._readers:
                self._readers[path.name] = EventReader(run.events)
                update.events[path.name] = []
        for run_id in self._readers:
            if run_id not in present and run_id not in self._gone:
                update.gone.add(run_id)
            elif run_id in present and run_id in self._gone:
                update.back.add(run_id)
        self._gone = (self._gone | update.gone) - update.back
        for run_id, reader in self._readers.items():
            if run_id in self._gone:
                continue
            good = read_chunked(reader)
            skipped = reader.skipped
            reader.skipped = 0
            if good:
                update.events.setdefault(run_id, []).extend(good)
            if run_id in update.back:
                update.events.setdefault(run_id, [])
            if skipped:
                update.skipped[run_id] = skipped
            known = self._documented.get(run_id)
            labelled = _mtime(labels_path(self.path(run_id)))
            if (
                known is None
                or (good and not known)
                or any(e["kind"] in ENDINGS for e in good)
                or any(e["kind"] == "message" and MODEL_WRITTEN in e["text"] for e in good)
                or labelled != self._labelled.get(run_id)  # named or tagged since
            ):
                docs = update.docs[run_id] = read_docs(RunDir(self.path(run_id)))
                self._documented[run_id] = docs.features is not None
                self._labelled[run_id] = labelled
        return update

    def apply(self, update: CatalogUpdate) -> set[str]:
        """Fold an update into the states; return the ids of runs that changed. Memory only."""
        changed: set[str] = set()
        self.new_events = {}
        for run_id, events in update.events.items():
            state = self.states.setdefault(run_id, RunState(run_id))
            for e in events:
                state.apply(e)  # the reader yields only valid events
            if events:
                self.new_events[run_id] = events
            changed.add(run_id)
        for run_id, n in update.skipped.items():
            self.states.setdefault(run_id, RunState(run_id)).skipped += n
            changed.add(run_id)
        for run_id, docs in update.docs.items():
            self.docs[run_id] = docs
            changed.add(run_id)
        for run_id in update.unreadable - set(self.states):
            self.states[run_id] = RunState(run_id, status=UNREADABLE)
            changed.add(run_id)
        # an archived run leaves the lists; its state stays for a screen still showing it
        self.removed = (self.removed | update.gone) - update.back
        changed |= update.gone | update.back
        return changed

    def refresh(self) -> set[str]:
        """Read and apply in one step; return the ids of runs that changed."""
        return self.apply(self.read())

    def state(self, run_id: str) -> RunState:
        return self.states[run_id]

    def documents(self, run_id: str) -> RunDocs:
        return self.docs.get(run_id) or RunDocs()

    def path(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.path(run_id))

    def ids(self) -> list[str]:
        """Run ids, newest first (ids start with their creation time)."""
        return sorted((r for r in self.states if r not in self.removed), reverse=True)

    def mean_task_seconds(self) -> float | None:
        """Mean duration of the finished tasks of every run (for the launch preview)."""
        durations = [s for state in self.states.values() for s in state.done.values()]
        return sum(durations) / len(durations) if durations else None
