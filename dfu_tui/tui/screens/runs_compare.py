"""Runs side by side: the runs marked in the runs list, one row each, with the config keys
that differ and paired differences from the first where their folds are the same."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from dfu_tui.tui.messages import Context
from dfu_tui.tui.screens.base import DfuScreen
from dfu_tui.tui.widgets import Footer


class RunsCompareScreen(DfuScreen):
    """Two or more runs side by side (read on a worker thread: fold rows come from the
    runs' prediction files)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, context: Context, run_ids: list[str]) -> None:
        super().__init__(context)
        self.run_ids = run_ids
        self.doc: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(f"Comparing {len(self.run_ids)} runs…", id="runs-compare-title")
            yield DataTable(id="runs-compare", cursor_type="row", zebra_stripes=True)
            yield Static("", id="runs-compare-caveats")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{len(self.run_ids)} runs side by side"
        self._read()

    @work(thread=True, exclusive=True, group="runs-compare", exit_on_error=False)
    def _read(self) -> None:
        from dfu_tui.runs.compare_runs import compare_runs

        runs = [self.context.catalog.run(r) for r in self.run_ids]
        doc = compare_runs(runs)
        self.app.call_from_thread(self._show, doc)

    def _show(self, doc: dict[str, Any]) -> None:
        from dfu_tui.engine.rules import SCALE_NAMES
        from dfu_tui.runs.compare_runs import caveat_lines, table_rows

        self.doc = doc
        head, rows = table_rows(doc)
        scale = SCALE_NAMES[doc["runs"][0]["metric"]]
        differ = ", ".join(doc["differing_keys"]) or "none"
        self.query_one("#runs-compare-title", Static).update(
            f"[b]{len(rows)} runs side by side[/b]: each run's fused (or selected) combination "
            f"on {escape(scale)} (QWK: quadratic, κ: unweighted), mean over its validation "
            f"folds with a corrected 95% CI and its n. Paired differences from the first, "
            f"{escape(doc['reference'])}, only where "
            "the folds are the same (same data, same validation patients); otherwise "
            f"'different folds: not paired'. Config keys that differ: {escape(differ)}."
        )
        table = self.query_one("#runs-compare", DataTable)
        table.clear(columns=True)
        table.add_columns(*head)
        for row in rows:
            table.add_row(*(escape(c) for c in row), key=row[0])
        caveats = caveat_lines(doc)
        self.query_one("#runs-compare-caveats", Static).update(
            "Caveats:\n" + "\n".join(escape(c) for c in caveats) if caveats else "Caveats: none"
        )
        table.focus()
