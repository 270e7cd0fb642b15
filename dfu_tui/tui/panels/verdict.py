"""The seed note's criteria for the fused combination: so far while the run goes, final from
its summary; each criterion with its numbers, the design's power and the caveats."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.widgets import Static

from dfu_tui.engine.rules import (
    SCALE_NAMES,
    caveat_texts,
    criterion_mark,
    criterion_value,
    design_text,
    tier_word,
)
from dfu_tui.runs.state import verdict_so_far
from dfu_tui.tui.panels.base import MonitorView, Panel

MARKS = {"yes": "[$success]✔[/]", "no": "[$error]✘[/]", "n/a": "–"}


class VerdictPanel(Panel):
    def compose(self) -> ComposeResult:
        yield Static("[b]Verdict[/b] (success criteria: docs/criteria.md)", classes="panel-title")
        yield Static(id="verdict")

    _judged: tuple[object, str, Any] | None = None  # (what it was judged on, prefix, verdict)

    def _verdict(self, view: MonitorView) -> tuple[str, Any]:
        """The verdict and how it was reached; judged again only when a fold finished."""
        state, docs = view.state, view.docs
        key = (
            docs.summary is not None,
            tuple((f["fold"], id(f)) for f in state.fold_results),
            view.fused,
        )
        if self._judged is not None and self._judged[0] == key:
            return self._judged[1], self._judged[2]
        verdict: Any = None
        prefix = ""
        if docs.summary is not None:
            verdict = docs.summary["combinations"][view.fused]["verdict"]
            prefix = "final"
        elif state.fold_results and docs.config is not None:
            verdict = verdict_so_far(docs.config, state, view.fused)
            prefix = f"so far ({state.folds_done} of {state.folds} folds)"
        self._judged = (key, prefix, verdict)
        return prefix, verdict

    def draw(self, view: MonitorView) -> None:
        prefix, verdict = self._verdict(view)
        if verdict is None:
            self.set_text("#verdict", "after the first fold")
            return
        scale = SCALE_NAMES.get(verdict.get("metric", "kappa"), "unweighted kappa")
        same = [
            f["combinations"][view.fused].get("paired", {}).get("n")
            for f in view.state.fold_results
            if f.get("fold_kind", "cv") == "cv"
        ]
        rows = f" (same rows: n={sum(same)})" if same and None not in same else ""
        design = design_text(verdict)
        lines = [
            prefix
            + f" on {scale}{rows}: "
            + "  ".join(
                f"{MARKS[tier_word(verdict, t)]} {t}" for t in ("minimum", "expected", "ideal")
            )
            + (f"  [b]{escape(design)}[/b]" if design else "")
        ]
        mark = {"ok": MARKS["yes"], "FAIL": MARKS["no"], "n/a": MARKS["n/a"]}
        for c in verdict["criteria"]:
            lines.append(
                f"{mark[criterion_mark(c)]} {c['tier']}: {c['name']} ({escape(criterion_value(c))})"
            )
        lines += [f"[$warning]caveat[/]: {escape(t)}" for t in caveat_texts(verdict)]
        self.set_text("#verdict", "\n".join(lines))
