"""Checking a resume: the run is ours, not running, and its config, code and data are still
what its fingerprint saved; only then may its missing tasks run again."""

from __future__ import annotations

import json
from typing import Any

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from dfu_tui.paths import atomic_write_text, read_own_bytes
from dfu_tui.runs.fingerprint import differences, run_fingerprint
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.supervisor import clear_stop, is_locked


def is_complete(run: RunDir, cfg: Config) -> bool:
    """Whether a run finished with every task's output valid and its summary written (a
    resume would only write the same files again)."""
    from dfu_tui.runs.catalog import read_json
    from dfu_tui.runs.state import load_state
    from dfu_tui.runs.tasks import output_valid, plan

    if load_state(run.path, history=False).status != "completed" or read_json(run.summary) is None:
        return False
    return all(output_valid(run, t) for t in plan(cfg))


def _saved_fingerprint(run: RunDir) -> dict[str, Any]:
    path = run.fingerprint
    try:
        saved = json.loads(read_own_bytes(path, 1 << 20).decode("utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{path}: missing or unreadable; cannot check the run") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config", {}), dict):
        raise InputError(f"{path}: not a fingerprint (a JSON object); cannot check the run")
    return saved


def check_resume(run: RunDir, moved: list[str]) -> Config | None:
    """The config a resume of `run` runs with (`moved`: executor overrides, written into the
    run's config), or None when the run is complete and nothing changed. InputError naming
    each difference when the run cannot resume. A stop requested from now on stops it."""
    from dfu_tui.runs.prepare import check_ray_address

    if is_locked(run):
        raise InputError(f"{run.path}: run is already running; stop it first or wait")
    clear_stop(run)  # a stop from now on, before the supervisor holds the run, stops it
    cfg = load_config(run.config)
    saved = _saved_fingerprint(run)
    if is_complete(run, cfg):
        # a changed config is still named; the data is not read (nothing would run)
        settings = cfg.results_settings()
        changed = differences({"config": saved.get("config", {})}, {"config": settings})
        if changed:
            raise InputError([f"{run.path}: cannot resume: {d}" for d in changed])
        return None
    diffs = differences(saved, run_fingerprint(cfg))
    if diffs:
        raise InputError([f"{run.path}: cannot resume: {d}" for d in diffs])
    if moved:  # where tasks run, and the notify hook, are not part of the fingerprint
        cfg = load_config(run.config, moved)
        check_ray_address(cfg)  # before the run's config is changed
        atomic_write_text(run.config, cfg.to_toml())
    else:
        check_ray_address(cfg)  # the executor the run was started on
    return cfg
