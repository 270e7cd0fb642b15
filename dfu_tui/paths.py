"""Private directories, atomic writes and the user's cache directory."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import platformdirs

from dfu_tui.errors import InputError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def user_cache_dir() -> Path:
    """Where the demo dataset and crop caches live (`DFU_TUI_CACHE_DIR` overrides)."""
    env = os.environ.get("DFU_TUI_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("dfu-tui"))


#: Libraries that write into `$HOME` unless told otherwise, and their folder in our cache.
TOOL_CACHES = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}


def tool_cache_env() -> None:
    """Point Keras and matplotlib at folders of our private cache (not `$HOME`), unless the
    user chose their own; the processes we start inherit it."""
    for variable, name in TOOL_CACHES.items():
        if not os.environ.get(variable):
            folder = user_cache_dir() / name
            with contextlib.suppress(OSError):  # a read-only cache: the library says so
                private_dir(folder)
            os.environ[variable] = str(folder)


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents readable by the user only.

    Only folders created here are given a mode: an existing folder is never changed (it may
    be a shared one such as /tmp, with its sticky bit, or the user's own working folder).
    """
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it first: it is not ours to change
        os.chmod(folder, PRIVATE_DIR_MODE)  # the umask may have removed bits we asked for
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: not a folder")
    return path


def make_private_tree(root: Path) -> None:
    """Files 0600 and folders 0700 under `root`, a tree this process just created."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, PRIVATE_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), PRIVATE_FILE_MODE)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through `write` into a temporary file beside `path`, then rename it into place.

    A reader never sees a half-written file; the file is created private to the user.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, PRIVATE_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    data = text.encode("utf-8")

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


class UnsafePath(OSError):
    """A path we were about to write into or trust is not a file or folder of ours."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_own_file(st: os.stat_result, path: Path) -> None:
    """Raise UnsafePath unless `st` is a regular file owned by this (effective) user."""
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{path}: {_kind(st.st_mode)}, not a regular file")
    if st.st_uid != os.geteuid():
        raise UnsafePath(f"{path}: owned by uid {st.st_uid}, not by this user")


def open_own(path: Path, flags: int, mode: int = PRIVATE_FILE_MODE) -> int:
    """`os.open` for a file of a run: never through a symbolic link (`O_NOFOLLOW`), never
    blocking on a FIFO (`O_NONBLOCK` until it is checked), and only a regular file owned by
    this user (a new one is created private). Returns the descriptor; UnsafePath otherwise."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symbolic link
            raise UnsafePath(f"{path}: a symbolic link, not a regular file") from None
        if exc.errno == errno.ENXIO:  # a FIFO with no reader, opened for writing
            raise UnsafePath(f"{path}: a FIFO, not a regular file") from None
        raise
    try:
        check_own_file(os.fstat(fd), path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_own_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of ours (no link, no FIFO wait), up to `limit`."""
    fd = open_own(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read() if limit is None else fh.read(limit)


def write_own_text(path: Path, text: str) -> None:
    """Write a small text file of a run in place: never through a link or into a FIFO, a
    device or another user's file."""
    fd = open_own(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def check_own_dir(path: Path, follow: bool = True) -> None:
    """Raise UnsafePath unless `path` is a folder owned by this user (a run folder we are
    about to write into or act on: another user's folder is never trusted, even by root);
    with `follow` False, a symbolic link is refused too."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as exc:
        raise UnsafePath(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{path}: not a folder")
    if st.st_uid != os.geteuid():
        raise UnsafePath(f"{path}: owned by uid {st.st_uid}, not by this user; not touched")


def require_own_dir(path: Path) -> None:
    """`check_own_dir` as one InputError line (exit 2)."""
    try:
        check_own_dir(path)
    except UnsafePath as exc:
        raise InputError(str(exc)) from None


def output_target(output: Path) -> bool:
    """Whether `--output` may be written: True to replace a regular file of ours, False for
    a new file; InputError for anything else (a symbolic link, a device, a FIFO, a folder,
    another user's file), which is never replaced."""
    try:
        st = os.lstat(output)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InputError(f"{output}: --output cannot be checked ({exc.strerror})") from None
    try:
        check_own_file(st, output)
    except UnsafePath as exc:
        raise InputError(f"{exc}; --output replaces only a regular file of yours") from None
    return True


def check_output(output: Path) -> bool:
    """Whether `--output` may be written (True: it replaces a regular file of ours), before
    anything is computed for it; InputError otherwise (see `output_target`)."""
    if output.is_dir() and not output.is_symlink():
        raise InputError(f"{output}: --output is a folder; give a file name")
    if not output.parent.is_dir():
        raise InputError(f"{output}: --output folder {output.parent} does not exist")
    return output_target(output)


def write_output(output: Path, text: str, what: str) -> bool:
    """Write a file the user named with `--output` (atomic, private): a new file, or one
    replacing a regular file the user owns (returns True then). A folder, a missing folder,
    a link, a device, a FIFO, another user's file or a failed write is one InputError naming
    the file, and nothing at the path changes."""
    replaced = check_output(output)
    try:
        atomic_write_text(output, text)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the machine's state: exit 1, the path
            raise OSError(exc.errno, exc.strerror, str(output)) from None
        raise InputError(f"{output}: cannot write the {what} ({exc.strerror})") from None
    return replaced
