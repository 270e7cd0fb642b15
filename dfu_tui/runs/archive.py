"""Archive a run into the runs folder's trash (`.trash/`), and restore it: a rename inside
the runs folder, nothing deleted. A running run is never moved: its lock is taken for the
move, so a supervisor cannot start on it meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

from dfu_tui.errors import InputError
from dfu_tui.paths import private_dir, require_own_dir
from dfu_tui.runs.rundir import RunDir

TRASH = ".trash"


def trash_dir(runs_dir: Path) -> Path:
    return runs_dir / TRASH


def archive_run(run: RunDir) -> Path:
    """Move a run into its runs folder's trash; returns where it went."""
    from dfu_tui.runs.supervisor import RunLock

    if run.path.is_symlink() or not run.path.is_dir():
        raise InputError(f"{run.path}: not a run folder")
    require_own_dir(run.path)
    trash = trash_dir(run.path.parent)
    if trash.is_symlink() or (trash.exists() and trash.stat().st_uid != os.getuid()):
        raise InputError(f"{trash}: a link or another user's folder; not archiving into it")
    try:
        private_dir(trash)
    except OSError as exc:
        raise InputError(f"{trash}: cannot make the trash folder ({exc})") from None
    target = trash / run.run_id
    if target.exists():
        raise InputError(f"{target}: an archived run of that id is in the way; restore it first")
    had_lock = run.lock.exists()
    lock = RunLock(run)
    lock.acquire()  # a running run: InputError naming its supervisor
    try:
        os.rename(run.path, target)
    except OSError as exc:
        raise InputError(f"{run.path}: cannot archive ({exc.strerror})") from None
    finally:
        lock.release()
    if not had_lock:  # the run as it was: the lock file was only for the move
        (target / run.lock.name).unlink(missing_ok=True)
    return target


def restore_run(runs_dir: Path, run_id: str) -> Path:
    """Move an archived run back into the runs folder; returns where it is."""
    plain = run_id and "/" not in run_id and run_id not in (".", "..") and "\0" not in run_id
    source = trash_dir(runs_dir) / run_id
    if (
        not plain
        or trash_dir(runs_dir).is_symlink()
        or source.is_symlink()
        or not RunDir(source).is_run()
    ):
        raise InputError(f"{trash_dir(runs_dir)}: no archived run '{run_id}'")
    target = runs_dir / run_id
    if target.exists():
        raise InputError(f"{target}: a run of that id is already in the runs folder")
    try:
        os.rename(source, target)
    except OSError as exc:
        raise InputError(f"{source}: cannot restore ({exc.strerror})") from None
    return target


def archived(runs_dir: Path) -> list[str]:
    """The ids of the archived runs, newest first."""
    trash = trash_dir(runs_dir)
    if trash.is_symlink() or not trash.is_dir():
        return []
    return sorted((p.name for p in trash.iterdir() if RunDir(p).is_run()), reverse=True)
