"""`notify.command`: the user's own command, run when a run completes, fails or is
cancelled, and when a fold raises a COLLAPSE, so that a run that ends while nobody watches
tells someone (a mail or chat hook).

The supervisor runs it from the run's events, the same whether the dashboard is open or
not. It is started and not waited for (a slow hook never holds a run), without a shell (its
words are split as a shell would, nothing is expanded), in a session of its own, without
the supervisor's secret token (it is the user's process, never stopped with the run), with
its output in the run's `logs/notify.log`. A hook that cannot start is said in the log."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from dfu_tui.runs.events import Event, EventReader
from dfu_tui.runs.rundir import RunDir

ENDINGS = {"run_finished": "completed", "run_failed": "failed", "run_cancelled": "cancelled"}


def words(command: str) -> list[str]:
    """The command's words, split as a shell would (a quoted path with spaces is one word);
    ValueError for unbalanced quotes."""
    return shlex.split(command)


class Notifier:
    """Reads the run's events from where they were when it was made (a resume does not
    announce what an earlier supervisor already did) and runs the command on the ones that
    matter; `sent` keeps what it announced (for the log and the tests)."""

    def __init__(self, command: str, run: RunDir) -> None:
        self.command = command
        self.run = run
        self.reader = EventReader(run.events)
        self.reader.offset = run.events.stat().st_size if run.events.exists() else 0
        self.sent: list[tuple[str, str]] = []

    def pump(self) -> list[str]:
        """Announce what is new; return a problem line for each hook that could not start."""
        problems = []
        for e in self.reader.read_new():
            said = self.announcement(e)
            if said is not None:
                problem = self.send(*said)
                if problem:
                    problems.append(problem)
        return problems

    def announcement(self, e: Event) -> tuple[str, str] | None:
        """(state, what to say) for an event worth a notification, else None."""
        if e["kind"] in ENDINGS:
            state = ENDINGS[e["kind"]]
            if state == "completed":
                return state, self.verdict()
            return state, str(e.get("reason") or state)
        if e["kind"] == "flag" and e.get("scope") == "fold" and e.get("level") == "collapse":
            where = "+".join(e.get("combination") or []) or "a combination"
            detail = f"{e.get('rule')}: {e.get('detail', '')}"
            return "collapse", f"fold {e.get('fold')} {where}: {detail}"
        return None

    def verdict(self) -> str:
        """The fused combination's verdict from the run's summary (words, not colours)."""
        from dfu_tui.engine.rules import verdict_headline
        from dfu_tui.runs.catalog import read_json

        summary = read_json(self.run.summary) or {}
        combos = summary.get("combinations") or []
        if not combos or not isinstance(combos[0], Mapping):
            return "completed (no summary)"
        first: Mapping[str, Any] = combos[0]
        name = "+".join(first.get("modalities") or [])
        return f"{name}: {verdict_headline(first['verdict'])}" if "verdict" in first else name

    def send(self, state: str, text: str) -> str:
        """Start the command with the run id, the state and the text; "" or a problem line."""
        from dfu_tui.paths import check_own_dir, open_own
        from dfu_tui.runs.procs import TOKEN_ENV

        try:
            argv = [*words(self.command), self.run.run_id, state, text]
        except ValueError as exc:
            return f"notify.command not run: {exc}"
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        env.update(
            DFU_TUI_RUN_ID=self.run.run_id,
            DFU_TUI_RUN_STATE=state,
            DFU_TUI_VERDICT=text,
            DFU_TUI_RUN_DIR=str(self.run.path),
        )
        try:
            self.run.logs.mkdir(mode=0o700, exist_ok=True)
            check_own_dir(self.run.logs, follow=False)
            log = open_own(self.run.logs / "notify.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        except OSError as exc:
            return f"notify.command not run: {self.run.logs}: {exc}"
        try:
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return f"notify.command could not start ({argv[0]}): {exc.strerror or exc}"
        finally:
            os.close(log)
        self.sent.append((state, text))
        return ""
