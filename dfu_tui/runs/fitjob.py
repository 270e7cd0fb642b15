"""A detached fit: the final model of a run, in a process `dfu-tui stop RUN` can end.

    python -m dfu_tui.runs.fitjob RUN_DIR OUTPUT [COMBINATION]

`dfu-tui fit RUN --detach` starts it in its own session; its progress goes into the run's
log as `message` events (the monitor's event log shows them, as a run's), so the dashboard
follows it, and it rewrites `RUN/fit-heartbeat.json` (its pid, what it is doing, when) every
heartbeat (`DFU_TUI_HEARTBEAT` seconds, as a run's supervisor): `status` and the dashboard
say "fitting", or "fit stale" once two heartbeats are missed (the process died; the same
command resumes it). Stopped (SIGTERM), it leaves an unfinished fit that the same command
resumes: every branch is written whole or not at all.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import traceback
from pathlib import Path

from dfu_tui.errors import InputError
from dfu_tui.runs import stopsignal


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m dfu_tui.runs.fitjob RUN_DIR OUTPUT [COMBINATION]", file=sys.stderr)
        return 2
    stopsignal.install()
    from dfu_tui.runs.events import EventWriter
    from dfu_tui.runs.model import fit_model, plan_fit
    from dfu_tui.runs.rundir import RunDir

    run = RunDir(Path(args[0]))
    events = EventWriter(run.events)
    doing = ["starting"]
    stop_beats = threading.Event()

    from dfu_tui.runs.fitbeat import write_fit_heartbeat
    from dfu_tui.runs.supervisor import heartbeat_seconds

    try:
        every = heartbeat_seconds()
    except InputError:
        every = 5.0  # a bad DFU_TUI_HEARTBEAT: the default (a run refuses to start with it)

    def beat() -> None:
        while not stop_beats.wait(every):
            write_fit_heartbeat(run, Path(args[1]), doing[0], every)

    def say(text: str) -> None:
        print(f"fit: {text}", flush=True)
        doing[0] = text
        write_fit_heartbeat(run, Path(args[1]), text, every)  # what it does, at once
        events.emit("message", text=f"fit: {text}")

    write_fit_heartbeat(run, Path(args[1]), doing[0], every)

    beats = threading.Thread(target=beat, daemon=True)
    beats.start()

    try:
        plan = plan_fit(run, args[2] if len(args) == 3 and args[2] else None)
        fit_model(plan, Path(args[1]), say)
        return 0
    except InputError as exc:
        for line in exc.problems:
            say(f"error: {line}")
        return 2
    except SystemExit as exc:
        say("stopped; the same fit command resumes it")
        return int(exc.code or 1)
    except Exception as exc:  # noqa: BLE001 - said in the run's log, whole trace in fit.log
        traceback.print_exc()
        if stopsignal.stop_code():  # a library turned the stop into an error of its own
            say("stopped; the same fit command resumes it")
            return stopsignal.stop_code()
        say(f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        stop_beats.set()
        beats.join(timeout=5)
        with contextlib.suppress(OSError):
            run.fit_heartbeat.unlink()
        events.close()


if __name__ == "__main__":
    raise SystemExit(main())
