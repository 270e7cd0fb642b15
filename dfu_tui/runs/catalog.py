"""Every run of a runs directory, kept current by reading only new event bytes.

Reading and applying are separate steps, so that a dashboard can read on a worker thread
(`read`: files only, no state touched) and apply on its UI thread (`apply`: memory only).
`refresh` does both, for callers with one thread.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from dfu_tui.runs.digest import FINISHED, log_mark, read_digest, write_digest
from dfu_tui.runs.events import CHUNK, Event, EventReader
from dfu_tui.runs.fitbeat import fit_activity
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
    fitting: dict[str, Any] | None = None  # a detached fit's activity (`runs.fitbeat`)


@dataclass
class CatalogUpdate:
    """What one `read` found: new events per run (well-formed ones), damaged lines skipped
    per run, and the documents read again."""

    events: dict[str, list[Event]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    docs: dict[str, RunDocs] = field(default_factory=dict)
    # whole states made on the reading thread (a run found, a log read again): they replace
    # the run's state, and the events above for that run come after them
    states: dict[str, RunState] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # runs whose folder went (archived)
    unreadable: set[str] = field(default_factory=set)  # folders we may not look into
    back: set[str] = field(default_factory=set)  # ... and came back (restored)

    def __bool__(self) -> bool:
        return bool(
            self.events or self.skipped or self.docs or self.states or self.gone or self.back
        )

    def merge(self, later: CatalogUpdate) -> None:
        """Add a later update to this one (events in order, the later documents; a later
        whole state replaces what came before it)."""
        for run_id, state in later.states.items():
            self.events.pop(run_id, None)
            self.skipped.pop(run_id, None)
            self.states[run_id] = state
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
        fit_activity(run),
    )


def _about_fit(text: str) -> bool:
    """A message of `dfu-tui fit` (its progress, its model written): the documents again."""
    return MODEL_WRITTEN in text or text.startswith("fit: ")


def listing_docs(run: RunDir) -> RunDocs:
    """What the runs list needs of a run's documents: its name and tags, whether it has a
    model (the rest is read with its log, when a screen shows the run)."""
    model = run.path / "model"
    return RunDocs(
        labels=read_labels(run.path),
        model=model if (model / "model.json").is_file() else None,
        fitting=fit_activity(run),
    )


def _mtime(path: Path | str) -> float:
    """A file's modification time, or 0 when it cannot be read."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _mark(events: str) -> tuple[int, int, int] | None:
    """`digest.log_mark` of a log given as text (a look at hundreds of finished runs)."""
    try:
        st = os.stat(events, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


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


#: How long one read may spend on runs it finds for the first time (the rest: next read),
#: once it has read a screenful of them (`FIRST_SIGHT_RUNS`, whatever the time: a folder of
#: a few dozen runs is listed whole at once, however busy the machine).
FIRST_SIGHT_SECONDS = 0.25
FIRST_SIGHT_RUNS = 40

#: A finished run's log is looked at once every this many reads (it rarely changes: a
#: resume); a live run's at every read.
FINISHED_EVERY = 8


class RunCatalog:
    """Readers and states for the runs in a directory; `refresh` reports which changed.

    A finished run with a sound digest (`runs.digest`) is listed from it without reading its
    log; a finished run without one is read once on the reading thread, kept without its
    epoch history, and digested into the user's cache (never into the run folder). A run's
    whole log, with its history, is read when a screen asks for it (`want`) and when it is
    live. Runs found at start are therefore listed at a cost that does not grow with their
    logs."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._readers: dict[str, EventReader] = {}  # touched by `read` only
        # run -> whether `read` has found its feature list (written once its data loaded)
        self._documented: dict[str, bool] = {}
        self._labelled: dict[str, float] = {}  # run -> labels.json's mtime when last read
        self._gone: set[str] = set()  # runs whose folder went (touched by `read` only)
        self._known: set[str] = set()  # runs found (touched by `read` only)
        # runs listed from their digest, with the log mark it was made from (`read` only)
        self._partial: dict[str, tuple[int, int, int]] = {}
        self._light: set[str] = set()  # runs whose state has no history (`read` only)
        self._finished: set[str] = set()  # runs whose log ended with a final event
        self._reads = 0
        self._wanted: set[str] = set()  # runs a screen asked for whole (any thread)
        self._looks: set[str] = set()  # runs to look at in the next read (any thread)
        self._wanted_lock = threading.Lock()
        self._listed: tuple[int, int] | None = None  # the runs folder's (inode, mtime)
        self._paths: list[tuple[str, Path]] = []  # ... and its entries then
        self._files: dict[str, tuple[str, str]] = {}  # run -> its log and labels, as text
        self.removed: set[str] = set()  # ... as applied (touched by `apply` only)
        self.states: dict[str, RunState] = {}  # touched by `apply` only
        self._live: set[str] = set()  # runs whose state is not final (`apply` only)
        self.docs: dict[str, RunDocs] = {}
        self.new_events: dict[str, list[Event]] = {}

    def want(self, run_ids: set[str] | list[str]) -> None:
        """Ask the next `read` for these runs' whole logs (a screen about to show them)."""
        with self._wanted_lock:
            self._wanted |= set(run_ids)

    def look(self, run_ids: set[str] | list[str]) -> None:
        """Ask the next `read` to look at these runs now (named or tagged from here), not
        only at its next look at finished runs."""
        with self._wanted_lock:
            self._looks |= set(run_ids)

    def whole(self, run_id: str) -> bool:
        """Whether the run's state has everything a screen shows (its history included)."""
        state = self.states.get(run_id)
        return state is not None and state.history and state.listing is None

    def read(self, budget: float | None = None) -> CatalogUpdate:
        """New runs and new events from disk, and the documents of runs that are new or
        just ended. Reads files; changes no state (whole states are made here and handed
        over in the update)."""
        update = CatalogUpdate()
        self._reads += 1
        present: set[str] = set()
        # runs found for the first time are read newest first, with a `budget` (the
        # dashboard's watcher: FIRST_SIGHT_SECONDS) for at most that long per read: hundreds
        # of runs without a digest (the first start after an upgrade) fill the list a
        # screenful at a time instead of after every log is read
        deadline, found = time.monotonic() + (math.inf if budget is None else budget), 0
        for name, path in reversed(self._entries()):
            if name in self._known:
                present.add(name)
                continue
            if found >= FIRST_SIGHT_RUNS and time.monotonic() > deadline:
                continue  # the next read goes on (a screenful at least per read)
            run = RunDir(path)
            if not run.is_run():
                if run.unreadable():
                    update.unreadable.add(name)
                continue
            present.add(name)
            self._known.add(name)
            self._first_sight(run, update)
            found += 1
        for run_id in self._known:
            if run_id not in present and run_id not in self._gone:
                update.gone.add(run_id)
            elif run_id in present and run_id in self._gone:
                update.back.add(run_id)
        self._gone = (self._gone | update.gone) - update.back
        with self._wanted_lock:
            wanted, self._wanted = self._wanted, set()
            looks, self._looks = self._looks, set()
        rarely = self._reads % FINISHED_EVERY == 0
        for run_id in sorted(self._known - self._gone - set(update.states)):
            look = rarely or run_id in looks or run_id in update.back or run_id in wanted
            if run_id in self._finished and not look:
                continue  # a finished run: looked at every few reads (costs nothing here)
            if run_id in self._partial:
                files = self._files.get(run_id)
                if files is None:
                    folder = self.path(run_id)
                    files = self._files[run_id] = (
                        str(folder / "events.jsonl"),
                        str(labels_path(folder)),
                    )
                events, labels = files
                if run_id in wanted or _mark(events) != self._partial[run_id]:
                    self._replay(RunDir(self.path(run_id)), update, whole=run_id in wanted)
                elif _mtime(labels) != self._labelled.get(run_id):
                    self._relabel(run_id, update)
                continue
            run = RunDir(self.path(run_id))
            if run_id in wanted and run_id in self._light:
                self._replay(run, update, whole=True)
                continue
            reader = self._readers[run_id]
            good = read_chunked(reader)
            skipped = reader.skipped
            reader.skipped = 0
            if good:
                update.events.setdefault(run_id, []).extend(good)
                for e in good:
                    if e["kind"] in ENDINGS:
                        self._finished.add(run_id)
                    elif e["kind"] == "run_resumed":
                        self._finished.discard(run_id)
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
                or any(e["kind"] == "message" and _about_fit(e["text"]) for e in good)
                or labelled != self._labelled.get(run_id)  # named or tagged since
            ):
                docs = update.docs[run_id] = read_docs(run)
                self._documented[run_id] = docs.features is not None
                self._labelled[run_id] = labelled
        return update

    def _entries(self) -> list[tuple[str, Path]]:
        """The runs folder's entries, listed again only when the folder changed (a run
        created, archived or restored changes its modification time)."""
        try:
            st = self.runs_dir.stat()
            listed = (st.st_ino, st.st_mtime_ns)
            if listed != self._listed:
                found = sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []
                self._paths = [(path.name, path) for path in found]
                self._listed = listed
        except OSError:  # a runs folder we may not list: nothing to show, nothing to crash
            self._paths, self._listed = [], None
        return self._paths

    def _relabel(self, run_id: str, update: CatalogUpdate) -> None:
        """A run's name and tags again when they changed (`dfu-tui tag`, the `t` key)."""
        labelled = _mtime(labels_path(self.path(run_id)))
        if labelled != self._labelled.get(run_id):
            self._labelled[run_id] = labelled
            run = RunDir(self.path(run_id))
            update.docs[run_id] = listing_docs(run) if run_id in self._partial else read_docs(run)

    def _first_sight(self, run: RunDir, update: CatalogUpdate) -> None:
        """A run found: from its digest when it has a sound one, else from its log."""
        run_id = run.path.name
        mark = log_mark(run)
        state = read_digest(run, mark) if mark is not None else None
        if state is None:
            self._replay(run, update, whole=False)
            return
        update.states[run_id] = state
        self._partial[run_id] = mark  # type: ignore[assignment]  # not None with a state
        self._light.add(run_id)
        self._finished.add(run_id)
        update.docs[run_id] = listing_docs(run)
        self._labelled[run_id] = _mtime(labels_path(run.path))

    def _replay(self, run: RunDir, update: CatalogUpdate, whole: bool) -> None:
        """A run's state from its whole log, made here: with its history when `whole` or
        when the run is live, else without (a finished run found, which also gets its
        digest, so that the next dashboard lists it without reading the log)."""
        run_id = run.path.name
        before = log_mark(run)
        reader = EventReader(run.events)
        events = read_chunked(reader)
        state = RunState(run_id, history=False)
        for e in events:
            state.apply(e)
        finished = state.status in FINISHED
        if whole or not finished:
            state = RunState(run_id)
            for e in events:
                state.apply(e)
        elif before is not None and before == log_mark(run) and reader.offset == before[1]:
            write_digest(run, state, before, cached=True)
        state.skipped = reader.skipped
        reader.skipped = 0
        update.states[run_id] = state
        self._readers[run_id] = reader
        self._partial.pop(run_id, None)
        if state.history:
            self._light.discard(run_id)
        else:
            self._light.add(run_id)
        if finished:
            self._finished.add(run_id)
        else:
            self._finished.discard(run_id)
        docs = update.docs[run_id] = read_docs(run)
        self._documented[run_id] = docs.features is not None
        self._labelled[run_id] = _mtime(labels_path(run.path))

    def live(self) -> list[str]:
        """The runs not finished (whose state can change with time alone: turn stale)."""
        return [r for r in self._live if r in self.states]

    def apply(self, update: CatalogUpdate) -> set[str]:
        """Fold an update into the states; return the ids of runs that changed. Memory only."""
        changed: set[str] = set()
        self.new_events = {}
        for run_id, state in update.states.items():
            self.states[run_id] = state
            changed.add(run_id)
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
        for run_id in changed:
            now = self.states.get(run_id)
            if now is not None and now.status not in FINISHED:
                self._live.add(run_id)
            else:
                self._live.discard(run_id)
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
