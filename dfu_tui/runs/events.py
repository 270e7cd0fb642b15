"""The append-only, versioned event log of a run (`events.jsonl`) and its incremental reader.

One JSON object a line with `v` (schema version), `kind` and `ts`; each append is flushed.
The reader keeps a byte offset and never trusts a line without its newline.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfu_tui.paths import PRIVATE_FILE_MODE, open_own
from dfu_tui.runs.records import EVENT_TYPES, valid

SCHEMA_VERSION = 1
KINDS = tuple(EVENT_TYPES)  # each kind's fields: dfu_tui/runs/records.py
FINAL_KINDS = ("run_finished", "run_failed", "run_cancelled")

Event = dict[str, Any]
Listener = Callable[[Event], None]


def _clean(value: Any) -> Any:
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    """Appends events to `events.jsonl`; notifies listeners.

    Several processes (the supervisor and its workers) append to one log: each line goes
    out in a single write() on an O_APPEND descriptor, so lines never interleave.
    """

    def __init__(self, path: Path, listeners: list[Listener] | None = None) -> None:
        self.path = path
        # never through a link, never into a FIFO, device or another user's file
        self._fd = open_own(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        self.listeners = listeners or []
        self._lock = threading.Lock()
        self._terminate_torn_line()

    def _terminate_torn_line(self) -> None:
        """A line cut by a crash or a full disk is ended before anything is appended, so the
        next event is not glued to it (the reader then skips the torn line alone)."""
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                return
            last = _last_byte(self.path, size)
        except OSError:
            return
        if last != b"\n":
            os.write(self._fd, b"\n")

    def emit(self, kind: str, **data: Any) -> Event:
        """Append one event and return it."""
        assert kind in KINDS, kind
        event = {"v": SCHEMA_VERSION, "kind": kind, "ts": round(time.time(), 3), **_clean(data)}
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            os.write(self._fd, line)
        for listener in self.listeners:
            listener(event)
        return event

    def close(self) -> None:
        os.close(self._fd)


def read_regular(path: Path, offset: int = 0, limit: int | None = None) -> bytes:
    """The bytes of a regular file from `offset` (at most `limit`): never through a symbolic
    link and never waiting on a FIFO (OSError for anything that is not a regular file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        os.lseek(fd, offset, os.SEEK_SET)
        chunks, size = [], 0
        while limit is None or size < limit:
            chunk = os.read(fd, 1 << 20 if limit is None else min(1 << 20, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


#: How much of a log one `read_new(CHUNK)` takes: a long log is applied chunk by chunk, so
#: reading it holds a bounded amount of raw text and decoded events at a time.
CHUNK = 4 << 20


def _last_byte(path: Path, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return os.pread(fd, 1, size - 1)
    finally:
        os.close(fd)


class EventReader:
    """Follows a growing `events.jsonl` by byte offset; a partial last line waits.

    It yields only valid events (`runs.records.valid`: a known kind with its fields and
    their types); lines it cannot use (not UTF-8, not JSON, not an object, an unknown kind,
    a missing or mistyped field) are skipped and counted in `skipped`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.skipped = 0
        self.more = False  # the last `read_new(limit)` stopped at its limit
        self._long = False  # inside a line longer than a whole chunk (skipped)
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) when last read

    @property
    def offset(self) -> int:
        """The byte where the next read starts."""
        return self._offset

    @offset.setter
    def offset(self, value: int) -> None:
        self._offset = value
        self._seen = None  # moved by hand (a follower starting at the end): read again

    def read_new(self, limit: int | None = None) -> list[Event]:
        """The complete events appended since the last call (with `limit`, those in the next
        `limit` bytes; `more` then says whether the log goes on). A line longer than a whole
        chunk is skipped and counted. A log whose size and modification time have not
        changed since the last read is not opened (a `stat` is all it costs)."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return []
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen == self._seen and not self.more:
            return []
        try:
            data = read_regular(self.path, self._offset, limit)
        except OSError:  # missing, unreadable, a link, a FIFO, a folder: nothing to read
            return []
        self._seen = seen
        self.more = limit is not None and len(data) >= limit
        start = 0
        if self._long:  # the rest of an overlong line
            first = data.find(b"\n")
            if first < 0:
                self._offset += len(data) if self.more else 0
                return []
            start, self._long = first + 1, False
        end = data.rfind(b"\n")
        if end < start:
            if self.more and start == 0:  # a whole chunk without a line end: overlong
                self.skipped += 1
                self._long = True
                self._offset += len(data)
            else:  # past the overlong line's end: the rest is read next time
                self._offset += start
            return []
        data = data[start:]
        end -= start
        self._offset += start + end + 1
        events = []
        for line in data[: end + 1].splitlines():
            if not line.strip(b" \t\r\n"):
                continue
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:  # not UTF-8 or not JSON (NUL bytes included)
                event = None
            if valid(event):
                events.append(event)
            else:
                self.skipped += 1  # a damaged line is skipped and counted, not fatal
        return events
