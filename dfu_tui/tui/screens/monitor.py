"""The run monitor: per-fold kappa table, current task and curve, prediction distribution with
the collapse flag, verdict checklist and event log, all following the run's events live."""

from __future__ import annotations

import statistics
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Header, RichLog, Static

from dfu_tui.engine.records import FoldResult
from dfu_tui.engine.rules import (
    SCALE_NAMES,
    caveat_texts,
    criterion_mark,
    criterion_value,
    design_text,
    tier_word,
)
from dfu_tui.runs.describe import describe
from dfu_tui.runs.events import Event
from dfu_tui.runs.figures import epoch_figure, epoch_task, fold_kappa_figure, share_figure
from dfu_tui.runs.figures import fused_index as _fused
from dfu_tui.runs.state import RunState, verdict_so_far
from dfu_tui.tui.format import (
    comparison_lines,
    distribution,
    duration,
    flag_markup,
    for_rich,
    line_markup,
    num,
    radar_lines,
)
from dfu_tui.tui.messages import (
    ExportRun,
    OpenCompare,
    OpenFoldDetail,
    ReportRun,
    ResumeRun,
    RunsUpdated,
    StopRun,
)
from dfu_tui.tui.plots import PlotPanel
from dfu_tui.tui.screens.base import RunScreen

WIDE = 110  # columns from which the panels sit side by side (the screen's `-wide` class)


def fused_index(state: RunState) -> int:
    """The combination shown as 'fused': the one with the most modalities."""
    return _fused(state.combinations)


def event_line(e: Event) -> str | None:
    """One markup line of the event log (what `runs.describe` says, its figures left to the
    panels), or None for events not worth a line."""
    lines = [line_markup(line) for line in describe(e) if not line.detail]
    return "\n".join(lines) or None


class MonitorScreen(RunScreen):
    """One run, live."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    BINDINGS = [
        Binding("left_square_bracket", "fold(-1)", "Prev fold", key_display="["),
        Binding("right_square_bracket", "fold(1)", "Next fold", key_display="]"),
        Binding("comma", "epoch(-1)", "Prev epoch", key_display=",", show=False),
        Binding("full_stop", "epoch(1)", "Next epoch", key_display=".", show=False),
        Binding("l", "latest", "Latest"),
        Binding("d", "detail", "Fold detail"),
        Binding("f", "features", "Features"),
        Binding("c", "compare", "Compare"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("p", "report", "Report"),
    ]

    selected_fold: reactive[int | None] = reactive(None, init=False)  # None: follow the latest
    selected_epoch: reactive[int | None] = reactive(None, init=False)  # index into the epochs

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="monitor-header")
        with VerticalScroll(id="monitor-scroll"), Grid(id="monitor-grid"):
            with Vertical(classes="panel", id="folds-panel"):
                yield Static("[b]Per-fold kappa[/b] (validation folds)", classes="panel-title")
                yield DataTable(id="folds", cursor_type="row", show_cursor=False)
                yield PlotPanel(id="fold-plot")
            with Vertical(classes="panel", id="task-panel"):
                yield Static("[b]Current task[/b]", classes="panel-title")
                yield Static(id="task")
                yield PlotPanel(id="epoch-plot")
            with Vertical(classes="panel", id="dist-panel"):
                yield Static(
                    "[b]Prediction distribution[/b]", classes="panel-title", id="dist-title"
                )
                yield Static(id="distribution")
                yield Static(id="flags")
                yield PlotPanel(id="share-plot")
            with Vertical(classes="panel", id="features-panel"):
                yield Static("[b]Features[/b]", classes="panel-title", id="features-title")
                yield Static(id="features")
            with Vertical(classes="panel", id="verdict-panel"):
                yield Static("[b]Verdict[/b] (seed note criteria)", classes="panel-title")
                yield Static(id="verdict")
            with Vertical(classes="panel", id="strategies-panel"):
                yield Static("[b]Fusion strategies[/b]", classes="panel-title")
                yield Static(id="strategies-title")
                yield DataTable(id="strategies", cursor_type="row", show_cursor=False)
            with Vertical(classes="panel", id="log-panel"):
                yield Static("[b]Events[/b]", classes="panel-title")
                yield RichLog(id="log", markup=True, wrap=True, max_lines=500)
        yield Footer()

    _logged = 0  # events of the run's log written to the event log panel

    def on_mount(self) -> None:
        self.sub_title = self.run_id
        self._write_log()
        self.redraw()

    def _write_log(self) -> None:
        """Every event of the run's log not written yet (also those that arrived while
        another screen was shown)."""
        log = self.query_one("#log", RichLog)
        events = self.state.log
        for e in events[self._logged :]:
            line = event_line(e)
            if line:
                log.write(for_rich(line))
        self._logged = len(events)

    def on_runs_updated(self, message: RunsUpdated) -> None:
        if self.run_id not in message.changed:
            return  # nothing new: nothing redrawn
        self._write_log()
        self.redraw()

    def watch_selected_fold(self) -> None:
        self.redraw()

    def watch_selected_epoch(self) -> None:
        self.redraw()

    # -- panels

    def redraw(self) -> None:
        state = self.state
        self.show_header(state)
        self.show_fold_table(state)
        self.show_task(state)
        # the numbers first; the plots once they are on screen (one pending at a time)
        if not self._plots_pending:
            self._plots_pending = True
            self.call_after_refresh(self.redraw_plots)
        self.show_distribution(state)
        self.show_features(state)
        self.show_verdict(state)
        self.show_strategies(state)

    _plots_pending = False

    def redraw_plots(self) -> None:
        """Each plot from the state as it is now (drawn again only when its figure changed)."""
        self._plots_pending = False
        state = self.state
        self.query_one("#fold-plot", PlotPanel).show(fold_kappa_figure(state))
        task = epoch_task(state, self.selected_epoch)
        self.query_one("#epoch-plot", PlotPanel).show(epoch_figure(state, task))
        self.query_one("#share-plot", PlotPanel).show(share_figure(state, task))

    def show_header(self, state: RunState) -> None:
        now = self.context.clock()
        age = state.to_dict(now)["last_heartbeat_age_s"] if state.status == "running" else None
        status = state.effective_status(now)
        colour = {
            "failed": "$error",
            "stale": "$warning",
            "cancelled": "$warning",
            "completed": "$success",
        }.get(status, "$accent")
        text = (
            f"[b]{escape(self.run_id)}[/b]  [{colour}]{status}[/]"
            f"  elapsed {duration(state.elapsed(now))}"
            f"  ETA {duration(state.eta(now))}  tasks {len(state.done)}/{len(state.tasks)}"
            f"  heartbeat {'-' if age is None else f'{age:.0f} s ago'}"
        )
        if state.skipped:
            text += f"  [$warning]{state.skipped} damaged log line(s) skipped[/]"
        if state.reason and status != "completed":
            text += f"\n{state.reason}"
        self.query_one("#monitor-header", Static).update(text)

    def show_fold_table(self, state: RunState) -> None:
        table = self.query_one("#folds", DataTable)
        if not state.combinations:
            return
        fused = "+".join(state.combinations[fused_index(state)])
        branches = list(state.fold_results[0]["branches"]) if state.fold_results else []
        columns = [
            "fold",
            "n",
            "kappa",
            "quadratic kappa",
            *(f"{b} alone kappa" for b in branches),
        ]
        if [str(c.label) for c in table.columns.values()] != columns:
            table.clear(columns=True)
            table.add_columns(*columns)
        table.clear()
        folds = sorted(state.fold_results, key=lambda f: f["fold"])
        rows: dict[int, list[float | None]] = {}
        sizes: dict[int, int] = {}
        for f in folds:
            c = f["combinations"][fused_index(state)]
            sizes[f["fold"]] = int(c.get("n") or 0)
            rows[f["fold"]] = [
                c["kappa"],
                c["quadratic_kappa"],
                *(f["branches"][b]["kappa"] for b in branches),
            ]
        for k in range(1, state.folds + 1):
            values = rows.get(k)
            cells = [num(v) for v in values] if values else ["…" for _ in columns[2:]]
            table.add_row(state.fold_name(k), str(sizes[k]) if k in sizes else "…", *cells)
        cv_folds = [f["fold"] for f in folds if f.get("fold_kind", "cv") == "cv"]
        cv = [rows[k] for k in cv_folds]
        if cv:
            n_all = sum(sizes[k] for k in cv_folds)
            table.add_row(f"mean ± sd ({len(cv)})", str(n_all), *mean_cells(cv))
        if state.repeats > 1:
            for r in range(1, state.repeats + 1):
                mine = [rows[f["fold"]] for f in folds if f.get("repeat") == r]
                if mine:
                    n_r = sum(sizes[f["fold"]] for f in folds if f.get("repeat") == r)
                    table.add_row(
                        f"repeat {r} mean", str(n_r), *(c.split(" ±")[0] for c in mean_cells(mine))
                    )
        title = self.query_one("#folds-panel .panel-title", Static)
        title.update(
            f"[b]Per-fold kappa[/b]: {fused} (unweighted and quadratic) on all its n "
            "validation samples (the verdict: the rows with every modality)"
            + (f", {state.repeats} repeats" if state.repeats > 1 else "")
            + ("; hold-out not in the mean" if state.strategy == "temporal" else "")
        )

    def show_task(self, state: RunState) -> None:
        task_box = self.query_one("#task", Static)
        if not state.running:
            task_box.update("no task running" if state.status == "running" else state.status)
            return
        task = sorted(state.running)[0]
        latest: dict[str, Any] = state.running[task]
        node = f" on {escape(state.nodes[task])}" if task in state.nodes else ""
        if not latest:
            task_box.update(f"{task}{node}: starting")
            return
        task_box.update(
            f"fold {latest['fold']} {latest['branch']}{node}: "
            f"epoch {latest['epoch']}/{latest['max_epochs']}"
            f"  loss {num(latest.get('loss'))}\ntrain kappa {num(latest.get('train_kappa'))}"
            f"  inner-val kappa {num(latest.get('val_kappa'))}"
            + (f" (n={latest['val_n']})" if latest.get("val_n") else "")
        )

    def _shown_fold(self, state: RunState) -> FoldResult | None:
        folds = sorted(state.fold_results, key=lambda f: f["fold"])
        if not folds:
            return None
        if self.selected_fold is None:
            return folds[-1]
        return next((f for f in folds if f["fold"] == self.selected_fold), folds[-1])

    def show_distribution(self, state: RunState) -> None:
        title = self.query_one("#dist-title", Static)
        body = self.query_one("#distribution", Static)
        flags_box = self.query_one("#flags", Static)
        fold = self._shown_fold(state) if self.selected_epoch is None else None
        extra = ""
        if fold is not None:
            c = fold["combinations"][fused_index(state)]
            follow = " (latest)" if self.selected_fold is None else ""
            title.update(
                f"[b]Prediction distribution[/b]: fold {fold['fold']}{follow}, "
                f"{'+'.join(c['modalities'])}, validation"
            )
            body.update(distribution(c["predicted_share"], c["true_share"]))
            flags = c["flags"]
        elif state.epochs:
            index = len(state.epochs) - 1 if self.selected_epoch is None else self.selected_epoch
            e = state.epochs[min(index, len(state.epochs) - 1)]
            title.update(
                f"[b]Prediction distribution[/b]: {e['task']} epoch {e['epoch']}/"
                f"{e['max_epochs']}, inner validation"
            )
            body.update(
                distribution(e.get("val_predicted_share") or {}, e.get("val_true_share") or {})
            )
            flags, holding = epoch_flags(state, e)
            if holding:
                extra = "[dim]holding, not raised yet: " + ", ".join(holding) + "[/]"
        else:
            title.update("[b]Prediction distribution[/b]")
            body.update("waiting for the first epoch or fold")
            flags = []
        ordered = sorted(flags, key=lambda f: f["level"] != "collapse")
        lines = [flag_markup(f) for f in ordered] or ["[$success]no flags[/]"]
        flags_box.update("\n".join([*lines, *([extra] if extra else [])]))

    def show_features(self, state: RunState) -> None:
        """The run's features, the shown fold's radar and flags, and the paired comparison."""
        docs = self.context.catalog.documents(self.run_id)
        lines = []
        doc = docs.features
        if doc is not None:
            left = [k for k in doc["excluded"] if not k.startswith("label")]
            lines.append(
                f"{len(doc['used'])} metadata features"
                + (f"; left out: {', '.join(left)}" if left else "")
                + ("; with visit history" if doc.get("history") else "")
            )
        fold = self._shown_fold(state)
        title = self.query_one("#features-title", Static)
        if fold is None:
            title.update("[b]Features[/b]")
            lines.append("radar after the first fold")
        else:
            title.update(f"[b]Features[/b]: leakage radar, fold {fold['fold']}")
            radar = fold.get("radar")
            lines.append(radar_lines(radar))
            lines += [flag_markup(f) for f in (radar["flags"] if radar else [])]
        summary = (docs.summary or {}).get("feature_comparison")
        compared = comparison_lines(state.fold_results, summary)
        if compared:
            lines.append(compared)
        self.query_one("#features", Static).update("\n".join(lines))

    def show_verdict(self, state: RunState) -> None:
        box = self.query_one("#verdict", Static)
        docs = self.context.catalog.documents(self.run_id)
        verdict = None
        if docs.summary is not None:
            verdict = docs.summary["combinations"][fused_index(state)]["verdict"]
            prefix = "final"
        elif state.fold_results and docs.config is not None:
            verdict = verdict_so_far(docs.config, state, fused_index(state))
            prefix = f"so far ({state.folds_done} of {state.folds} folds)"
        if verdict is None:
            box.update("after the first fold")
            return
        scale = SCALE_NAMES.get(verdict.get("metric", "kappa"), "unweighted kappa")
        same = [
            f["combinations"][fused_index(state)].get("paired", {}).get("n")
            for f in state.fold_results
            if f.get("fold_kind", "cv") == "cv"
        ]
        rows = f" (same rows: n={sum(same)})" if same and None not in same else ""
        marks = {"yes": "[$success]✔[/]", "no": "[$error]✘[/]", "n/a": "–"}
        design = design_text(verdict)
        lines = [
            prefix
            + f" on {scale}{rows}: "
            + "  ".join(
                f"{marks[tier_word(verdict, t)]} {t}" for t in ("minimum", "expected", "ideal")
            )
            + (f"  [b]{escape(design)}[/b]" if design else "")
        ]
        for c in verdict["criteria"]:
            mark = {"ok": marks["yes"], "FAIL": marks["no"], "n/a": marks["n/a"]}
            lines.append(
                f"{mark[criterion_mark(c)]} {c['tier']}: {c['name']} ({escape(criterion_value(c))})"
            )
        lines += [f"[$warning]caveat[/]: {escape(t)}" for t in caveat_texts(verdict)]
        box.update("\n".join(lines))

    _strategy_rows: list[tuple[str, ...]] | None = None

    def show_strategies(self, state: RunState) -> None:
        """Every fusion of `fusion.compare` for the fused combination, side by side; the
        panel is hidden for a run that compares none."""
        from dfu_tui.runs.strategies import cells, columns, strategies_of, title

        panel = self.query_one("#strategies-panel")
        docs = self.context.catalog.documents(self.run_id)
        compared = docs.config is not None and len(docs.config.fusion_variants()) > 1
        panel.display = compared and bool(state.combinations)
        if not panel.display:
            return
        combo = state.combinations[fused_index(state)]
        found, so_far = strategies_of(docs.config, state, docs.summary, combo)
        note = self.query_one("#strategies-title", Static)
        if found is None:
            note.update(
                "after the first fold: "
                + ", ".join(
                    v.name
                    for v in docs.config.fusion_variants()  # type: ignore[union-attr]
                )
            )
            return
        note.update(escape(title("+".join(combo), found, so_far)))
        rows = [cells(r, found["metric"]) for r in found["rows"]]
        if rows == self._strategy_rows:
            return  # nothing new: nothing redrawn
        self._strategy_rows = rows
        table = self.query_one("#strategies", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns(found))
        for row in rows:
            table.add_row(*(escape(c) for c in row))

    # -- actions

    def action_fold(self, step: int) -> None:
        """Show the previous / next fold (its distribution rather than an epoch's)."""
        folds = sorted(f["fold"] for f in self.state.fold_results)
        if not folds:
            self.selected_epoch = None
            return
        current = self.selected_fold if self.selected_fold is not None else folds[-1]
        index = max(0, min(len(folds) - 1, folds.index(current) + step if current in folds else 0))
        self._select(folds[index], None)

    def action_epoch(self, step: int) -> None:
        """Step through the epochs (inner-validation shares) of every image task so far."""
        epochs = self.state.epochs
        if not epochs:
            return
        current = self.selected_epoch if self.selected_epoch is not None else len(epochs)
        self.selected_epoch = max(0, min(len(epochs) - 1, current + step))

    def action_latest(self) -> None:
        self._select(None, None)

    def _select(self, fold: int | None, epoch: int | None) -> None:
        """Change both selections with one redraw (when anything changed)."""
        if (fold, epoch) != (self.selected_fold, self.selected_epoch):
            self.set_reactive(MonitorScreen.selected_fold, fold)
            self.set_reactive(MonitorScreen.selected_epoch, epoch)
            self.redraw()

    def action_detail(self) -> None:
        fold = self._shown_fold(self.state)
        if fold is not None:
            self.post_message(OpenFoldDetail(self.run_id, fold["fold"]))

    def action_features(self) -> None:
        """The run's resolved feature list (features.json) in a dialog."""
        from dfu_tui.tui.screens.modals import MessageScreen

        doc = self.context.catalog.documents(self.run_id).features
        if doc is None:
            path = self.context.catalog.run(self.run_id).features
            self.notify(f"{path}: no feature list for this run", severity="warning")
            return
        self.app.push_screen(MessageScreen(f"Features of {self.run_id}", features_text(doc)))

    def action_compare(self) -> None:
        self.post_message(OpenCompare(self.run_id))

    def action_stop(self) -> None:
        self.post_message(StopRun(self.run_id))

    def action_resume(self) -> None:
        self.post_message(ResumeRun(self.run_id))

    def action_export(self) -> None:
        self.post_message(ExportRun(self.run_id))

    def action_report(self) -> None:
        self.post_message(ReportRun(self.run_id))


def features_text(doc: dict[str, Any]) -> str:
    """features.json as plain text: the columns used, then each reason and its columns."""
    lines = [f"Used by the metadata branch ({len(doc['used'])}):"]
    lines += [f"  {c}" for c in doc["used"]]
    for reason, columns in doc["excluded"].items():
        lines.append(f"Left out, {reason} ({len(columns)}):")
        lines += [f"  {c}" for c in columns]
    if doc.get("compare"):
        drops = ", ".join(doc.get("compare_drops", []))
        lines.append(f"Compared without {doc['compare']}: {drops}")
    if doc.get("extra_columns"):
        lines.append(f"Not in the clinic's format: {', '.join(doc['extra_columns'])}")
    return "\n".join(lines)


def epoch_flags(state: RunState, e: Event) -> tuple[list[dict[str, Any]], list[str]]:
    """The flags in force at epoch `e` of its task (raised at or before it, rule still
    holding), and the rules holding at `e` that have not held long enough to be raised."""
    holding = e.get("rules_holding")
    if holding is None:  # a run from before persistence: its flags as they came
        return list(e.get("flags", [])), []
    raised = [
        f
        for f in state.flags
        if f.get("scope") == "epoch" and f.get("task") == e["task"] and f["epoch"] <= e["epoch"]
    ]
    collapsing = (e.get("collapse_streak") or 0) > 0
    in_force = [
        f for f in raised if f["rule"] in holding or (f["level"] == "collapse" and collapsing)
    ]
    latest = {f["rule"]: f for f in in_force}  # one line per rule, the latest raising
    waiting = sorted({r for r in holding if r not in latest})
    return list(latest.values()), waiting


def mean_cells(rows: list[list[float | None]]) -> list[str]:
    """`mean ± sample sd` per column; one value has no sd."""
    cells = []
    for i in range(len(rows[0])):
        vals = [float(v) for r in rows if (v := r[i]) is not None]
        if not vals:
            cells.append("-")
        elif len(vals) == 1:
            cells.append(f"{vals[0]:.3f}")
        else:
            cells.append(f"{statistics.fmean(vals):.3f} ± {statistics.stdev(vals):.3f}")
    return cells
