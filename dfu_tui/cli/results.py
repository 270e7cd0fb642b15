"""Reading and handling finished runs: `status`, `show`, `compare`, `export`, `report`,
`archive`, `restore`, `tag`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from dfu_tui.errors import InputError

if TYPE_CHECKING:
    pass

from dfu_tui.cli import term


def cmd_show(args: argparse.Namespace) -> int:
    """A run's summary as `run` printed it at the end (verdicts, every combination, branch
    and fusion); reads the run's files and writes nothing."""
    from dfu_tui.config import load_config
    from dfu_tui.console import RunConsole
    from dfu_tui.runs.catalog import read_json
    from dfu_tui.runs.state import load_state

    run = term.resolve_run(args.run, args.runs_dir)
    state = load_state(run.path, history=False)
    summary = read_json(run.summary)
    status = state.effective_status()
    if summary is None or not summary.get("combinations"):
        done = f"{state.folds_done}/{state.folds} folds"
        term.out.print(
            f"{run.run_id}: {status}, {done}; no summary yet (it is written when the run "
            f"completes; dfu-tui status {run.run_id} follows it)",
            markup=False,
        )
        return term.EXIT_OK
    term.out.print(
        f"{run.run_id}: {status}, elapsed {term.duration(state.elapsed())}, "
        f"{state.folds_done}/{state.folds} folds",
        markup=False,
    )
    RunConsole(term.out, load_config(run.config), run).final_table(summary)
    return term.EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Runs side by side: the keys that differ, the criteria-scale mean with n and interval,
    flags and verdict; paired differences from the first run where the folds are the same."""
    import csv
    import io

    from dfu_tui.engine.summary import finite
    from dfu_tui.runs.compare_runs import caveat_lines, compare_runs, table_rows

    runs = [term.resolve_run(name, args.runs_dir) for name in args.runs]
    if len({r.path.resolve() for r in runs}) < 2:
        raise InputError("compare: give two or more different runs")
    doc = compare_runs(runs)
    if args.json:
        print(json.dumps(finite(doc), indent=2))
        return term.EXIT_OK
    head, rows = table_rows(doc)
    if args.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(head)
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
        return term.EXIT_OK
    table = Table(
        title=f"{len(runs)} runs side by side; paired differences from {doc['reference']} "
        "only where the folds are the same (same data, same validation patients); intervals "
        "are corrected 95% CIs over folds",
        title_justify="left",
    )
    for i, col in enumerate(head):
        table.add_column(escape(col), no_wrap=i == 0)  # a run id is copied whole
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    term.out.print(table)
    for line in caveat_lines(doc):
        term.out.print(f"caveat {line}", markup=False)
    return term.EXIT_OK


def cmd_archive(args: argparse.Namespace) -> int:
    """Move a run into `RUNS/.trash/` (never a running one); `restore` brings it back."""
    from dfu_tui.runs.archive import archive_run

    run = term.own_run(term.resolve_run(args.run, args.runs_dir))
    target = archive_run(run)
    term.out.print(
        f"{run.run_id}: archived to {target}; dfu-tui restore {run.run_id} brings it back",
        markup=False,
    )
    return term.EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Bring an archived run back into the runs folder, or list the archived runs."""
    from dfu_tui.runs.archive import archived, restore_run

    if args.run is None:
        ids = archived(args.runs_dir)
        term.out.print(
            "\n".join(ids) if ids else f"no archived runs in {args.runs_dir}", markup=False
        )
        return term.EXIT_OK
    target = restore_run(args.runs_dir, args.run)
    term.out.print(f"{args.run}: restored to {target}", markup=False)
    return term.EXIT_OK


def cmd_tag(args: argparse.Namespace) -> int:
    """Name a run, add or remove tags; prints the run's labels. Nothing else is touched."""
    from dfu_tui.runs.labels import edited, read_labels, write_labels

    run = term.own_run(term.resolve_run(args.run, args.runs_dir))
    labels = read_labels(run.path)
    if args.name is not None or args.add or args.remove:
        labels = edited(labels, args.name, args.add, args.remove)
        try:
            write_labels(run.path, labels)
        except OSError as exc:
            raise InputError(f"{run.path}: cannot save the labels ({exc.strerror})") from None
    tags = " ".join(f"#{t}" for t in labels.tags) or "no tags"
    term.out.print(f"{run.run_id}: {labels.name or '(no name)'}; {tags}", markup=False)
    return term.EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Every run (or one) from its directory: state, progress, ETA, kappa, flags."""
    from dfu_tui.runs.rundir import RunDir
    from dfu_tui.runs.state import SCALE_KEYS, UNREADABLE, load_state

    unreadable: list[Path] = []
    if args.run is not None:
        runs = [term.resolve_run(args.run, args.runs_dir).path]
    else:
        try:
            found = sorted(args.runs_dir.glob("*")) if args.runs_dir.is_dir() else []
        except OSError:
            found = []
        runs = [p for p in found if RunDir(p).is_run()]
        unreadable = [p for p in found if RunDir(p).unreadable()]
    from dfu_tui.runs.fitbeat import fit_activity

    states = []
    for p in runs:
        state = load_state(p, history=False).to_dict()
        fit = fit_activity(RunDir(p))
        if fit is not None:
            state["fit"] = fit  # a detached `dfu-tui fit` of the run: fitting or stale
        states.append(state)
    # another user's runs: listed, never read
    states += [{"run_id": p.name, "status": UNREADABLE} for p in unreadable]
    states.sort(key=lambda s: s["run_id"])
    if args.json:
        print(json.dumps(states if not args.run else states[0], indent=2))
        return term.EXIT_OK
    if not states:
        term.out.print(f"no runs in {args.runs_dir}")
        return term.EXIT_OK
    from dfu_tui.runs.rundir import short_ids

    short = short_ids([s["run_id"] for s in states])
    table = Table(
        title=f"Runs in {args.runs_dir}",
        title_justify="left",
        caption="run: the shortest unique prefix of its id (every command takes it; --json "
        "has the whole id). best: the mean on the criteria scale (QWK: quadratic, kappa: "
        "unweighted) over its own rows, n samples. flags: collapse C, warning W.",
        caption_justify="left",
        box=None,
        pad_edge=False,
    )
    width = max((len(v) for v in short.values()), default=3)
    table.add_column("run", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True)
    table.add_column("tasks folds", no_wrap=True)
    table.add_column("time (ETA)")
    table.add_column("combination: best", overflow="fold")
    table.add_column("flags", no_wrap=True)
    for s in states:
        run_id = escape(short[s["run_id"]])
        if s["status"] == UNREADABLE:
            table.add_row(run_id, UNREADABLE, *("-" * 4))
            continue
        combos = s["combinations"]
        label = "+".join(combos[0]) if len(combos) == 1 else f"{len(combos)} combinations"
        kappa = "-"
        key = SCALE_KEYS.get(s["metric"], s["metric"])
        if s[f"best_mean_{key}"] is not None:
            scale = "QWK" if s["metric"] == "quadratic_kappa" else "kappa"
            kappa = f"{scale} {s[f'best_mean_{key}']:.3f} n={s['best_n']}"
            versus = s[f"best_versus_reference_{key}"]
            if s["best_selected_from"] > 1:
                vs = f" {versus:+.3f} vs {s['best_reference']}," if versus is not None else ""
                kappa += f" ({s['best_combination']},{vs} best of {s['best_selected_from']})"
            if s["best_collapse_folds"]:
                kappa += f" collapsed in {s['best_collapse_folds']} fold(s)"
        flags = s["flags"]
        time_left = ""
        if s["status"] == "running":
            low, high = s.get("eta_low_s"), s.get("eta_high_s")
            if low is None or high is None:
                time_left = " (ETA estimating)"
            else:
                a, b = term.duration(low), term.duration(high)
                time_left = f" ({a if a == b else f'{a}-{b}'})"
        fit = s.get("fit")
        fit_note = ""
        if fit is not None:
            fit_note = ", fitting" if fit["state"] == "fitting" else ", fit stale"
        table.add_row(
            run_id,
            s["status"] + fit_note,
            f"{s['tasks_done']}/{s['tasks_total']} {s['folds_done']}/{s['folds_total']}",
            term.duration(s["elapsed_s"]) + time_left,
            f"{label}: {kappa}",
            f"{flags['collapse']}C {flags['warning']}W",
        )
    term.out.print(table)
    return term.EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """All folds x combinations x branches, and per-epoch history, as CSV or JSON."""
    from dfu_tui.runs.export import export_run

    run = term.resolve_run(args.run, args.runs_dir)
    if args.output is not None and str(args.output) == "-":
        sys.stdout.write(export_run(run, args.format))
        return term.EXIT_OK
    from dfu_tui.paths import check_output, write_output

    if args.output is None:
        term.own_run(run)  # into the run's folder, as the dashboard's `e`: it must be ours
    output: Path = args.output if args.output is not None else run.export_file(args.format)
    check_output(output)  # before the export is built: a refused path costs nothing
    replaced = write_output(output, export_run(run, args.format), "export")
    term.err.print(f"{'replaced' if replaced else 'wrote'} {output}", markup=False)
    return term.EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """The run's config, verdict, per-fold tables and figures as one HTML file (0600)."""
    from dfu_tui.paths import check_output, write_output
    from dfu_tui.report import build_report

    run = term.resolve_run(args.run, args.runs_dir)
    if args.output is None:
        term.own_run(run)  # the report goes into the run's folder: it must be ours
    output: Path = args.output if args.output is not None else run.report
    check_output(output)  # before the report is built: a refused path costs nothing
    replaced = write_output(output, build_report(run), "report")
    term.err.print(f"{'replaced' if replaced else 'wrote'} {output}", markup=False)
    return term.EXIT_OK
