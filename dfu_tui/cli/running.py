"""`run`, `resume` and `stop`: a run prepared (`runs.prepare`), started detached or in the
foreground with a live view, resumed (`runs.resume`), stopped."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.rundir import RunDir

from dfu_tui.cli import term
from dfu_tui.cli.dataset import _load_with_progress


def _supervise(run: RunDir, jobs: int, resume: bool, detach: bool) -> int:
    """Run the supervisor detached (return at once) or in the foreground with a live view."""
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.resources import default_jobs
    from dfu_tui.runs.state import load_state
    from dfu_tui.runs.supervisor import (
        Supervisor,
        confirm_started,
        heartbeat_seconds,
        spawn_detached,
    )

    jobs = jobs or default_jobs()
    if detach:
        offset = run.log.stat().st_size if run.log.exists() else 0
        proc = spawn_detached(run, jobs, resume)
        confirm_started(run, proc, offset)  # the lock is ours: `stop` from now on finds it
        term.out.print(run.run_id, markup=False)
        term.err.print(
            f"supervisor pid {proc.pid}; log {run.log}; follow with: dfu-tui status {run.run_id}",
            markup=False,
        )
        return term.EXIT_OK
    from dfu_tui.config import load_config
    from dfu_tui.runs import netns

    cfg = load_config(run.config)
    ex = cfg.executor
    view = RunConsole(term.out, cfg, run)
    with view:
        if netns.local_ray(ex.kind, ex.address) and not netns.can_isolate_here():
            # this process has threads: only a fresh one can keep a local Ray instance on
            # loopback (a user namespace); it runs detached and this view follows its log
            code = _follow(run, jobs, resume, view)
        else:
            code = Supervisor(run, jobs, heartbeat_seconds(), on_event=view.on_event).execute(
                resume
            )
    state = load_state(run.path, history=False)
    if code == 0:
        view.final_table(json.loads(run.summary.read_text(encoding="utf-8")))
        return term.EXIT_OK
    term.err.print(f"error: run {run.run_id} {state.status}: {state.reason}", markup=False)
    if state.status == "failed":
        return term.EXIT_FAILED
    return 130


def _follow(run: RunDir, jobs: int, resume: bool, view: RunConsole) -> int:
    """Start the supervisor in a process of its own and show its events as they come, as a
    foreground run does; Ctrl-C stops the run. Returns the supervisor's exit code."""
    from dfu_tui.runs.control import stop_run
    from dfu_tui.runs.events import FINAL_KINDS, EventReader
    from dfu_tui.runs.supervisor import confirm_started, spawn_detached

    reader = EventReader(run.events)
    reader.offset = run.events.stat().st_size if run.events.exists() else 0
    offset = run.log.stat().st_size if run.log.exists() else 0
    proc = spawn_detached(run, jobs, resume)
    confirm_started(run, proc, offset)
    try:
        while True:
            ended = proc.poll() is not None
            for event in reader.read_new():
                view.on_event(event)
                if event["kind"] in FINAL_KINDS:
                    ended = True
            if ended:
                return proc.wait()
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop_run(run)
        return 130


def executor_overrides(args: argparse.Namespace) -> list[str]:
    """`--executor`, `--ray-address` and `--notify` as config overrides (settings that do
    not change the results: a resume may change them)."""
    out = []
    if getattr(args, "notify", None) is not None:
        out.append(f"notify.command={json.dumps(args.notify)}")
    if args.executor is not None:
        out.append(f"executor.kind={json.dumps(args.executor)}")
    if args.ray_address is not None:
        out.append(f"executor.address={json.dumps(args.ray_address)}")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Start an experiment: foreground with a live view, or detached with --detach."""
    from dfu_tui.config import load_config
    from dfu_tui.runs.labels import Labels, check_name, check_tag
    from dfu_tui.runs.prepare import check_data, check_ray_address, create_run

    overrides = [*args.overrides, *executor_overrides(args)]
    if args.compare_features is not None:
        overrides.append(f"features.compare={json.dumps(args.compare_features)}")
    cfg = load_config(args.config, overrides)

    labels = Labels(check_name(args.name), tuple(dict.fromkeys(check_tag(t) for t in args.tags)))
    check_ray_address(cfg)
    dataset = check_data(cfg, _load_with_progress, lambda text: term.err.print(text, markup=False))
    run = create_run(args.runs_dir, cfg, dataset, labels, Path(args.config).name)
    return _supervise(run, args.jobs or 0, resume=False, detach=args.detach)


def cmd_resume(args: argparse.Namespace) -> int:
    """Re-run only the missing tasks of a run whose fingerprint still matches."""
    from dfu_tui.runs.resume import check_resume

    run = term.own_run(term.resolve_run(args.run, args.runs_dir))
    if check_resume(run, executor_overrides(args)) is None:
        term.out.print(
            f"{run.run_id}: completed; nothing to resume, nothing changed "
            f"(dfu-tui show {run.run_id} prints its summary)",
            markup=False,
        )
        return term.EXIT_OK
    return _supervise(run, args.jobs or 0, resume=True, detach=args.detach)


def cmd_stop(args: argparse.Namespace) -> int:
    """SIGTERM to the supervisor's process group, SIGKILL after the grace period."""
    from dfu_tui.runs.control import stop_run

    run = term.own_run(term.resolve_run(args.run, args.runs_dir))
    status, seconds = stop_run(run, args.grace)
    term.out.print(f"{run.run_id}: {status} after {seconds:.1f} s", markup=False)
    return term.EXIT_OK
