"""The home screen: every run with its state, progress, kappa and flags, updating live."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Header, Input, Static
from textual.widgets.data_table import ColumnKey, RowKey

from dfu_tui.runs.fitbeat import fit_state
from dfu_tui.runs.labels import Labels
from dfu_tui.runs.rundir import short_ids
from dfu_tui.runs.state import UNREADABLE, RunState
from dfu_tui.tui.format import duration, eta_text
from dfu_tui.tui.messages import (
    CompareRuns,
    RunsUpdated,
)
from dfu_tui.tui.screens.base import DfuScreen
from dfu_tui.tui.widgets import Footer

COLUMNS = (  # what decides first: at 80 columns the later ones scroll (`→`)
    "",
    "run",
    "status",
    "best",
    "flags",
    "name",
    "folds",
    "combination",
    "fusion",
    "tasks",
    "elapsed",
    "ETA",
    "tags",
    "config",
    "model",
)


#: The columns that stay on screen when the table scrolls sideways (the mark and the run).
FIXED = 2


class RunsTable(DataTable[str]):
    """The runs table, which repaints only the cells whose text changed (a heartbeat moves
    one run's elapsed time: one cell goes to the terminal, not the whole table)."""

    def set_cell(self, row: str, column: str, value: str) -> bool:
        """Put `value` in a cell; repaint that cell only, and only if its text changed."""
        if self.get_cell(row, column) == value:
            return False
        if Text.from_markup(value).cell_len > self.columns[ColumnKey(column)].content_width:
            # wider than its column: the column grows (the whole table is drawn again, once)
            self.update_cell(row, column, value, update_width=True)
            return True
        # `update_cell` without its repaint of the whole table (Textual 8.2)
        self._data[RowKey(row)][ColumnKey(column)] = value
        self._update_count += 1  # the rendered rows are cached by this count
        coordinate = Coordinate(self.get_row_index(row), self.get_column_index(column))
        self.refresh_coordinate(coordinate)
        return True


def run_row(
    state: RunState,
    now: float,
    labels: Labels | None = None,
    marked: bool = False,
    short: str | None = None,
    model: bool = False,
    fitting: str = "",
) -> tuple[str, ...]:
    """The cells of one run's row: the run by its shortest unique id prefix (`short`, as
    `status` prints it and every command takes it), the best combination's mean on the
    criteria's scale (QWK or κ, as the verdict), with its n and its collapse flags beside it."""
    labels = labels or Labels()
    combos = state.combinations
    label = "+".join(combos[0]) if len(combos) == 1 else f"{len(combos)} combinations"
    if len(label) > 24:
        label = label[:23] + "…"
    flags = state.flag_counts()
    flag_cell = "-"
    if flags["collapse"] or flags["warning"]:
        flag_cell = f"{flags['collapse']}C {flags['warning']}W"
    scale = "QWK" if state.metric == "quadratic_kappa" else "κ"
    best = state.best_kappa_text()
    return (
        "✓" if marked else " ",
        escape(short or state.run_id),
        state.effective_status(now),
        "-" if best == "-" else f"{scale} {best}",
        flag_cell,
        escape(labels.name) or "-",
        f"{state.folds_done}/{state.folds}",
        label,
        escape(state.fusion) or "-",
        f"{len(state.done)}/{len(state.tasks)}",
        duration(state.elapsed(now)),
        eta_text(state, now),
        escape(" ".join(f"#{t}" for t in labels.tags)) or "-",
        escape(labels.config_file) or "-",
        # `dfu-tui fit` wrote RUN/model; a detached fit runs ("fitting") or died ("fit stale")
        "fitted" if model else {"fitting": "fitting", "stale": "fit stale"}.get(fitting, "-"),
    )


class RunsScreen(DfuScreen):
    """Runs list (home)."""

    BINDINGS = [
        Binding("n", "app.launch", "New run"),
        Binding("enter", "run('open')", "Open", show=True),
        Binding("s", "run('stop')", "Stop"),
        Binding("r", "run('resume')", "Resume"),
        Binding("e", "run('export')", "Export"),
        # not in the footer, which is full at 80 columns (help and the palette list it)
        Binding("p", "run('report')", "Report", show=False),
        Binding("M", "run('fit')", "Fit model", show=False),
        Binding("c", "compare_marked", "Compare"),
        Binding("space", "mark", "Mark", show=False),
        Binding("delete", "run('archive')", "Archive", show=False),
        Binding("t", "run('label')", "Name/tags", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs-body"):
            yield Input(placeholder="filter runs (id, name, #tag, status, modality)", id="filter")
            yield RunsTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="runs-hint")
            yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        self.marked = set()
        for column in COLUMNS:
            table.add_column(column, key=column)
        table.fixed_columns = FIXED  # the run stays in view when `→` scrolls
        self.watch(table, "scroll_x", lambda _: self._hint(), init=False)
        self.query_one("#filter", Input).display = False
        self.refresh_rows(set(self.context.catalog.ids()))
        table.focus()

    # -- data

    marked: set[str] = set()  # runs marked with space, for a side-by-side comparison

    short: dict[str, str] = {}  # run id -> its shortest unique prefix among the runs
    _empty_text: str | None = None  # what the "no runs" line says now

    def row(self, run_id: str) -> tuple[str, ...]:
        catalog = self.context.catalog
        docs = catalog.documents(run_id)
        return run_row(
            catalog.state(run_id),
            self.context.clock(),
            docs.labels,
            run_id in self.marked,
            self.short.get(run_id),
            docs.model is not None,
            fit_state(docs.fitting, self.context.clock())["state"] if docs.fitting else "",
        )

    def _visible(self, run_id: str) -> bool:
        needle = self.query_one("#filter", Input).value.strip().lower()
        return not needle or needle in " ".join(self.row(run_id)).lower()

    def refresh_rows(self, changed: set[str]) -> None:
        """Update only the rows of runs that changed (or all, when the filter changed)."""
        table = self.query_one("#runs", RunsTable)
        catalog = self.context.catalog
        short = short_ids(catalog.ids())
        if short != self.short:  # a new run can lengthen another's prefix: every row
            self.short = short
            changed = set(catalog.ids())
        wanted = [r for r in catalog.ids() if self._visible(r)]
        present = [str(k.value) for k in table.rows]
        if present != wanted:
            cursor = self.selected_run()
            table.clear()
            for run_id in wanted:
                table.add_row(*self.row(run_id), key=run_id)
            if cursor in wanted:
                table.move_cursor(row=wanted.index(cursor))
        else:
            for run_id in changed & set(wanted):
                for column, value in zip(COLUMNS, self.row(run_id), strict=True):
                    table.set_cell(run_id, column, value)
        empty = self.query_one("#runs-empty", Static)
        text = (
            ""
            if wanted
            else f"No runs yet in the folder {catalog.runs_dir}/. Press n to launch one."
        )
        if text != self._empty_text:  # an update lays the screen out again: only on change
            self._empty_text = text
            empty.update(text)
            empty.display = not wanted
        self.call_after_refresh(self._hint)

    def _hint(self) -> None:
        """Under the table, when columns lie beyond its right edge: which, and `→`."""
        table = self.query_one("#runs", DataTable)
        hint = self.query_one("#runs-hint", Static)
        hidden = []
        x = 0
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            if x > table.scrollable_content_region.width + table.scroll_x:
                hidden.append(str(column.label))
        text = f"→ more columns: {', '.join(hidden)}" if hidden and table.row_count else ""
        room = max(10, self.size.width - 2)
        text = text if len(text) <= room else text[: room - 1] + "…"
        if str(hint.render()) != text:
            hint.update(text)
        hint.display = bool(text)

    def on_resize(self) -> None:
        self.call_after_refresh(self._hint)

    def on_runs_updated(self, message: RunsUpdated) -> None:
        self.refresh_rows(message.changed)

    def selected_run(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        run_id = str(key.value)
        state = self.context.catalog.states.get(run_id)
        if state is not None and state.status == UNREADABLE:
            self.notify(f"{run_id}: not readable (another user's run); nothing to do")
            return None
        return run_id

    # -- actions

    @on(DataTable.RowSelected, "#runs")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_run("open")

    def target_run(self) -> str | None:
        return self.selected_run()

    def action_compare_marked(self) -> None:
        """Two or more marked runs: side by side; else the highlighted run's combinations."""
        marked = [r for r in self.context.catalog.ids() if r in self.marked]
        if len(marked) >= 2:
            self.post_message(CompareRuns(list(reversed(marked))))  # oldest first: the reference
            return
        self.action_run("compare")

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run for a side-by-side comparison (`c`)."""
        run_id = self.selected_run()
        if not run_id:
            return
        self.marked ^= {run_id}
        self.refresh_rows({run_id})
        table = self.query_one("#runs", DataTable)
        table.move_cursor(row=min(table.cursor_row + 1, table.row_count - 1))
        if len(self.marked) >= 2:
            self.notify(f"{len(self.marked)} runs marked: c compares them side by side")

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one("#runs", DataTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.refresh_rows(set())

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#runs", DataTable).focus()
