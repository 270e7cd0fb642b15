"""What each event of a run's log means, in words: one function per kind (`DESCRIBE`).

The headless console, the dashboard's event log and its notifications all read these lines,
so what an event says is written once. A line is plain text with a tone; each reader styles
it its own way (Rich, Textual markup, a toast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dfu_tui.runs.records import (
    AnyEvent,
    BranchFinished,
    CombinationResult,
    Epoch,
    Flag,
    FoldFinished,
    Message,
    RunCancelled,
    RunFailed,
    TaskStarted,
)

ERROR, WARNING, SUCCESS, PLAIN = "error", "warning", "success", ""
#: Who is told of a line by a notification: no one, a user not watching the run, everyone.
QUIET, AWAY, ALWAYS = "", "away", "always"


@dataclass(frozen=True)
class Line:
    """One line about an event: `where` it happened, `head` (emphasised, in the tone's
    colour), then `text`.

    `detail`: a line for a reader that shows every figure as text (the console); the
    dashboard shows those figures in its panels instead. `notice`: who should hear of it
    in a notification (`AWAY`: a user not watching this run; `ALWAYS`: its watcher too)."""

    text: str
    tone: str = PLAIN
    head: str = ""
    detail: bool = False
    notice: str = QUIET
    where: str = ""

    def plain(self) -> str:
        return self.where + (f"{self.head}: {self.text}" if self.head else self.text)


def num(value: Any) -> str:
    """A score to three decimals; `nan` for a missing one (null in the log)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.3f}"


def flags_text(flags: list[dict[str, Any]]) -> str:
    """`COLLAPSE missing_class: I never predicted, ...; WARNING ...`."""
    return "; ".join(f"{f['level'].upper()} {f['rule']}: {f['detail']}" for f in flags)


def _nothing(e: Any) -> list[Line]:
    return []


def _named(e: Any) -> list[Line]:
    return [Line(e["kind"].replace("_", " "))]


def _task_started(e: TaskStarted) -> list[Line]:
    where = f" on {e['node']}" if e.get("node") else ""
    return [Line(f"started {e['task']}{where}")]


def _epoch(e: Epoch) -> list[Line]:
    text = (
        f"fold {e['fold']} {e['branch']} epoch {e['epoch']}/{e['max_epochs']} "
        f"loss {num(e.get('loss'))} train kappa {num(e.get('train_kappa'))} "
        f"early-stopping split kappa {num(e.get('val_kappa'))}"
    )
    flags = e.get("flags") or []
    if flags:
        text += f" [{flags_text(flags)}]"
    return [Line(text, WARNING if flags else PLAIN, detail=True)]


def usage_text(e: Mapping[str, Any]) -> str:
    """`CPU 187% of a core, peak 1.2 GB (GPU 3.1 GB)` from an event's usage fields, or ""."""
    parts = []
    if isinstance(e.get("cpu_percent"), int | float):
        parts.append(f"CPU {e['cpu_percent']:.0f}% of a core")
    if isinstance(e.get("peak_rss_mb"), int | float):
        parts.append(f"peak {megabytes(e['peak_rss_mb'])}")
    if isinstance(e.get("gpu_peak_mb"), int | float):
        parts.append(f"GPU peak {megabytes(e['gpu_peak_mb'])}")
    return ", ".join(parts)


def megabytes(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _branch_finished(e: BranchFinished) -> list[Line]:
    used = usage_text(e)
    return [
        Line(
            f"finished {e['task']} in {e.get('seconds') or 0:.1f} s"
            + (f" ({used})" if used else "")
        )
    ]


def combination_line(fold: int, c: Mapping[str, Any]) -> str:
    """Every figure of one combination on one fold, both kappas named."""
    shares = " ".join(f"{k} {v:.2f}" for k, v in c["predicted_share"].items())
    line = (
        f"fold {fold} {'+'.join(c['modalities'])}: kappa {num(c['kappa'])} "
        f"quadratic_kappa {num(c['quadratic_kappa'])} accuracy {num(c.get('accuracy'))} "
        f"macro_f1 {num(c.get('macro_f1'))} n {c.get('n', '?')} predicted {shares}"
    )
    if c.get("mean_alpha") is not None:
        line += f" mean alpha {c['mean_alpha']:.3f}"
    return line + (f" [{flags_text(c['flags'])}]" if c["flags"] else "")


def _fold_finished(e: FoldFinished) -> list[Line]:
    combos: list[CombinationResult] = e["combinations"]
    last = combos[-1]  # the one with the most modalities
    done = Line(
        f"fold {e['fold']} done: {'+'.join(last['modalities'])} kappa {num(last['kappa'])} "
        f"quadratic_kappa {num(last['quadratic_kappa'])} (n {last.get('n', '?')})"
    )
    return [done, *(Line(combination_line(e["fold"], c), detail=True) for c in combos)]


def _flag(e: Flag) -> list[Line]:
    if e.get("scope") != "fold":  # an epoch's flags are in its epoch line
        return []
    combo = "+".join(e.get("combination", []))
    if e.get("strategy"):  # another fusion of `fusion.compare`
        combo += f" ({e['strategy']} fusion)"
    collapse = e["level"] == "collapse"
    return [
        Line(
            e["detail"],
            ERROR if collapse else WARNING,
            head=f"{e['level'].upper()} {e['rule']}",
            where=f"fold {e.get('fold', '?')} {combo}: ",
            notice=AWAY if collapse else QUIET,
        )
    ]


def _message(e: Message) -> list[Line]:  # a retried task, orphans ended on resume
    return [Line(str(e.get("text", "")), WARNING)]


def _finished(e: Any) -> list[Line]:
    return [Line("completed", SUCCESS, notice=AWAY)]


def _failed(e: RunFailed) -> list[Line]:
    return [Line(str(e.get("reason", "")), ERROR, head="FAILED", notice=ALWAYS)]


def _cancelled(e: RunCancelled) -> list[Line]:
    return [Line(str(e.get("reason", "")), WARNING, head="CANCELLED")]


DESCRIBE: dict[str, Callable[[Any], list[Line]]] = {
    "run_started": _named,
    "run_resumed": _named,
    "heartbeat": _nothing,
    "fold_started": _nothing,
    "task_started": _task_started,
    "epoch": _epoch,
    "branch_finished": _branch_finished,
    "fold_finished": _fold_finished,
    "flag": _flag,
    "message": _message,
    "run_finished": _finished,
    "run_failed": _failed,
    "run_cancelled": _cancelled,
}


def describe(e: AnyEvent | Mapping[str, Any]) -> list[Line]:
    """The lines an event says (none for heartbeats and the like)."""
    return DESCRIBE[e["kind"]](e)
