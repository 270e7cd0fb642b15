"""Private directories, atomic writes and the user's cache directory."""

from __future__ import annotations

import os
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


def write_output(output: Path, text: str, what: str) -> None:
    """Write a file the user named with `--output` (atomic, private); a folder, a missing
    folder or a failed write is one InputError naming the file."""
    if output.is_dir():
        raise InputError(f"{output}: --output is a folder; give a file name")
    if not output.parent.is_dir():
        raise InputError(f"{output}: --output folder {output.parent} does not exist")
    try:
        atomic_write_text(output, text)
    except OSError as exc:
        raise InputError(f"{output}: cannot write the {what} ({exc.strerror})") from None
