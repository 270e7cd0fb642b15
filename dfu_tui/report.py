"""`dfu-tui report RUN`: one self-contained HTML file of a run, for a co-author or a clinician.

Everything is inline: the figures are SVG drawn by matplotlib (Agg-family backends, text as
paths, so no font is fetched) embedded as `data:` images, the style is one `<style>` block,
and there is no script. It reads the run directory only (events, config, summary,
fingerprint, stored predictions); it never imports TensorFlow or scikit-learn (their versions
come from the installed package metadata). No per-patient value is written: the figures and
tables hold per-fold aggregates only.

A running, stale, failed or cancelled run gets a partial report, marked so at the top.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import io
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from statistics import fmean
from typing import TYPE_CHECKING, Any

from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.caveats import holdout_text, selection_text
from dfu_tui.engine.records import figure
from dfu_tui.engine.rules import (
    SCALE_NAMES,
    caveat_texts,
    criterion_mark,
    criterion_value,
    design_text,
    tier_word,
)
from dfu_tui.errors import InputError
from dfu_tui.runs.catalog import read_docs, read_json
from dfu_tui.runs.figures import (
    Figure,
    Heatmap,
    confusion_heatmap,
    cv_folds,
    epoch_figure,
    flag_timeline,
    fold_kappa_figure,
    fused_index,
    share_figure,
)
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import RunState, load_state, verdict_so_far
from dfu_tui.runs.tasks import parse_task_id

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Colours of the series, in order of first appearance (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
LEVEL_COLOURS = {"collapse": "#D55E00", "warning": "#E69F00"}
VERSIONS = ("tensorflow", "scikit-learn", "numpy", "matplotlib", "textual")

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.banner { background: #fff3cd; border: 1px solid #e0b000; padding: 0.6em 1em; }
.banner.failed { background: #f8d7da; border-color: #c0392b; }
.ok { color: #1a7f37; } .no { color: #c0392b; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}f}" if isinstance(value, int | float) else _e(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], cls: str = "") -> str:
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# -- figures (matplotlib, SVG)


def _svg(fig: Any) -> str:
    """The figure as SVG. Text stays text in a generic sans-serif family (the viewer's own
    font: nothing is fetched), which is several times faster to write than glyph paths."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _figure(fig: Any, caption: str, name: str) -> str:
    data = base64.b64encode(_svg(fig).encode("utf-8")).decode("ascii")
    return (
        f'<figure data-figure="{_e(name)}"><img alt="{_e(caption)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _new_figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    """A figure of rows x cols axes. Small multiples get fixed spacing: the constrained
    layout measures every label of every panel and was most of a 10-fold report's time."""
    from matplotlib.figure import Figure as MplFigure

    many = rows * cols > 2
    fig = MplFigure(figsize=(width, height), layout=None if many else "constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    if many:
        fig.subplots_adjust(
            left=0.07, right=0.93, bottom=0.12 / rows, top=1 - 0.1 / rows, wspace=0.8, hspace=0.6
        )
    return fig, axes


class Colours:
    """A colour per series group, in order of first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        if key not in self.seen:
            self.seen[key] = LEVEL_COLOURS.get(key) or PALETTE[len(self.seen) % len(PALETTE)]
        return self.seen[key]


def draw(
    ax: Axes,
    f: Figure,
    colours: Colours | None = None,
    legend: bool = True,
    title: str | None = None,
) -> None:
    """A `Figure` on matplotlib axes: the same series the dashboard draws."""
    colours = colours or Colours()
    title = f.title if title is None else title
    ax.set_title(title if not f.empty else f"{title}: {f.empty}", fontsize=9)
    if f.empty:
        ax.set_axis_off()
        return
    ax.set_xlabel(f.xlabel, fontsize=8)
    ax.set_ylabel(f.ylabel, fontsize=8)
    right = ax.twinx() if any(s.side == "right" for s in f.series) else None
    if right is not None:
        right.set_ylabel(f.ylabel_right, fontsize=8)
    bars = [s for s in f.series if s.kind == "bar"]
    width = 0.8 / max(1, len(bars))
    handles: list[Any] = []
    for s in f.series:
        h: Any
        target = right if s.side == "right" and right is not None else ax
        c = colours(s.group or s.label)
        if s.kind == "line":
            (h,) = target.plot(
                s.x, s.y, color=c, label=s.label, marker="." if len(s.x) < 30 else ""
            )
        elif s.kind == "band":
            h = target.fill_between(s.x, s.y, s.upper, color=c, alpha=0.2, label=s.label, lw=0)
        elif s.kind == "scatter":
            h = target.scatter(s.x, s.y, color=c, label=s.label, zorder=3, s=22)
        elif s.kind == "hline":
            h = target.axhline(s.y[0], color=c, ls="--", lw=1, label=s.label)
        elif s.kind == "vline":
            h = target.axvline(s.x[0], color=c, ls=":", lw=1.2, label=s.label)
        else:  # bar
            j = bars.index(s)
            shift = (j - (len(bars) - 1) / 2) * width
            h = target.bar([x + shift for x in s.x], s.y, width=width * 0.9, color=c, label=s.label)
        handles.append(h)
    if f.xticks:
        ax.set_xticks([t for t, _ in f.xticks], [label for _, label in f.xticks])
    if f.yticks:
        ax.set_yticks([t for t, _ in f.yticks], [label for _, label in f.yticks])
    if f.ylim:
        ax.set_ylim(*f.ylim)
    if f.xlim:
        ax.set_xlim(*f.xlim)
    ax.tick_params(labelsize=7)
    if right is not None:
        right.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    if legend and handles:
        if bars:  # beside the bars, never over them
            ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)


def draw_heatmap(ax: Axes, h: Heatmap) -> None:
    """A row-normalised matrix with each cell's count and share."""
    ax.imshow(h.shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(h.counts):
        for j, count in enumerate(row):
            share = h.shares[i][j]
            ax.text(
                j,
                i,
                f"{count}\n{share:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share > 0.55 else "black",
            )
    ax.set_xticks(range(len(h.columns)), h.columns)
    ax.set_yticks(range(len(h.rows)), h.rows)
    ax.set_xlabel(h.column_label, fontsize=8)
    ax.set_ylabel(h.row_label, fontsize=8)
    ax.set_title(h.title, fontsize=9)


def _grid(n: int, cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return -(-n // cols), cols


def image_task_figures(state: RunState) -> list[str]:
    """Per image branch: each fold's training curve, and each fold's predicted shares over
    epochs against the true shares (small multiples, one panel per fold)."""
    by_branch: dict[str, list[tuple[int, str]]] = {}
    for task in dict.fromkeys(str(e["task"]) for e in state.epochs):
        try:
            fold, branch = parse_task_id(task)
        except ValueError:
            continue  # a damaged line's task id: nothing to draw
        by_branch.setdefault(branch, []).append((fold, task))
    out = []
    for branch in sorted(by_branch):
        mine = [t for _, t in sorted(by_branch[branch])]
        rows, cols = _grid(len(mine))
        for maker, what in (
            (
                epoch_figure,
                "training curve: train and inner-validation kappa (unweighted), "
                "loss on the right axis, early stopping's best epoch dotted",
            ),
            (
                share_figure,
                "predicted share of each class on the inner-validation split by "
                "epoch; dashed: the true share (a collapse shows as one class taking over)",
            ),
        ):
            fig, axes = _new_figure(3.2 * cols, 2.4 * rows + 0.3, rows, cols)
            colours = Colours()
            for k, ax in enumerate(axes.flat):
                if k < len(mine):
                    panel = state.fold_name(parse_task_id(mine[k])[0])
                    draw(ax, maker(state, mine[k]), colours, legend=k == 0, title=panel)
                else:
                    ax.set_axis_off()
            out.append(_figure(fig, f"{branch}, every fold: {what}", f"{maker.__name__}-{branch}"))
    return out


def pooled_confusion(state: RunState, index: int) -> Heatmap | None:
    folds = cv_folds(state)
    if not folds:
        return None
    total = [[0] * len(CLASSES) for _ in CLASSES]
    for f in folds:
        for i, row in enumerate(f["combinations"][index]["confusion"]):
            for j, v in enumerate(row):
                total[i][j] += int(v)
    return Heatmap(
        f"Confusion over {len(folds)} validation folds\n(rows: true class, normalised)",
        CLASSES,
        CLASSES,
        tuple(tuple(r) for r in total),
    )


# Beyond this many validation folds (folds x repeats) the report keeps the pooled matrix
# only: more panels than that are not read, and each costs the report time.
MOST_FOLD_PANELS = 30


def fold_confusion_figure(state: RunState, index: int) -> str:
    """The fused combination's confusion on each validation fold, as the fold detail shows
    it (small multiples): where one fold's errors lie, which the pooled matrix averages out."""
    folds = cv_folds(state)
    if len(folds) < 2:
        return ""  # the pooled matrix is that fold's
    if len(folds) > MOST_FOLD_PANELS:
        return (
            f"<p>{len(folds)} validation folds: the confusion of each is in the fold detail of "
            f"the dashboard (the report draws one per fold up to {MOST_FOLD_PANELS}).</p>"
        )
    rows, cols = _grid(len(folds), cols=5)
    fig, axes = _new_figure(2.6 * cols, 2.5 * rows + 0.3, rows, cols)
    for k, ax in enumerate(axes.flat):
        if k >= len(folds):
            ax.set_axis_off()
            continue
        h = confusion_heatmap(folds[k], index)
        draw_heatmap(ax, replace(h, title=state.fold_name(int(folds[k]["fold"]))))
    fused = "+".join(state.combinations[index])
    return _figure(
        fig,
        f"{fused}: confusion on each validation fold (rows: true class; shaded by the share "
        "of the row, count and share in each cell).",
        "fold-confusion",
    )


def mean_f1_figure(state: RunState, index: int) -> Figure:
    """Per-class F1 averaged over the cross-validation folds: fused, then each branch."""
    from dfu_tui.runs.figures import Series

    folds = cv_folds(state)
    fused = folds[0]["combinations"][index]
    rows: list[tuple[str, list[Mapping[str, Any]]]] = [
        ("+".join(fused["modalities"]), [f["combinations"][index] for f in folds])
    ]
    if len(fused["modalities"]) > 1:
        rows += [(f"{b} alone", [f["branches"][b] for f in folds]) for b in folds[0]["branches"]]
    xs = tuple(float(k) for k in range(len(CLASSES)))
    series = []
    for label, ms in rows:
        ys = []
        for c in CLASSES:
            vals = [float(m["f1"][c]) for m in ms if m["f1"].get(c) is not None]
            ys.append(sum(vals) / len(vals) if vals else math.nan)
        series.append(Series(label, xs, tuple(ys), kind="bar", group=label))
    return Figure(
        f"Per-class F1\nmean over {len(folds)} validation folds",
        xlabel="class",
        ylabel="F1",
        series=tuple(series),
        xticks=tuple((float(k), c) for k, c in enumerate(CLASSES)),
        ylim=(0.0, 1.0),
    )


def curve_section(run: RunDir, state: RunState, cfg: Any, index: int) -> str:
    """The fusion-weight curve of the fused combination, from the stored predictions."""
    from dfu_tui.runs.analysis import curve_view

    view = curve_view(run, state, cfg, state.combinations[index])
    if view.figure is None:
        return f"<p>{_e(view.problem[:1].upper() + view.problem[1:])}.</p>"
    mfig, axes = _new_figure(7.5, 3.6)
    draw(axes[0][0], view.figure)
    return _figure(
        mfig,
        f"Mean validation kappa (unweighted) over {view.folds} folds as the metadata weight "
        "goes 0 to 1 (images keep their ratio); band: ±1 sample sd over folds; dashed: each "
        "branch alone, mean kappa over the folds on its own samples. Measured on the "
        "validation folds: it describes the run and must not be used to choose weights.",
        "fusion-curve",
    )


# -- sections


def _banner(state: RunState, now: float) -> str:
    status = state.effective_status(now)
    if status == "completed":
        return ""
    done = f"{state.folds_done} of {state.folds} folds finished"
    reason = f": {_e(state.reason)}" if state.reason else ""
    cls = "banner failed" if status == "failed" else "banner"
    return (
        f'<p class="{cls}"><b>Partial report</b>: the run is <b>{_e(status)}</b>{reason}; '
        f"{done}. Every figure and table covers the finished folds only.</p>"
    )


def _later_patients(docs: Any) -> str:
    """The selection (on common rows) and the temporal hold-out, with its interval and its
    gap split into case mix and era, from summary.json."""
    summary = docs.summary or {}
    out = []
    if summary.get("selection"):
        out.append(f"<p>{_e(selection_text(summary['selection']))}</p>")
    holdout = summary.get("holdout")
    if holdout:
        out.append("<h3>Temporal hold-out</h3><ul>")
        out += [
            f"<li>{_e(holdout_text(holdout['metric'], holdout, r))}</li>"
            for r in holdout["combinations"]
        ]
        out.append(f"</ul><p>Interval: {_e(str(holdout.get('interval', 'none')))}.</p>")
    return "".join(out)


def _verdict(state: RunState, docs: Any, index: int) -> str:
    summary = docs.summary
    if summary is not None and index < len(summary.get("combinations", [])):
        verdict = summary["combinations"][index].get("verdict")
        prefix = "Final verdict"
    elif docs.config is not None and state.fold_results:
        verdict = verdict_so_far(docs.config, state, index)
        prefix = f"Verdict so far ({state.folds_done} of {state.folds} folds)"
    else:
        verdict, prefix = None, ""
    if not verdict:
        return "<p>No verdict yet: no fold has finished.</p>"
    scale = SCALE_NAMES.get(verdict.get("metric", "kappa"), "unweighted kappa")
    marks = {"yes": ("ok", "✔"), "no": ("no", "✘"), "n/a": ("na", "–")}
    tiers = " ".join(
        f'<span class="{marks[w][0]}">{marks[w][1]} {t}{" n/a" if w == "n/a" else ""}</span>'
        for t in ("minimum", "expected", "ideal")
        for w in [tier_word(verdict, t)]
    )
    symbol = {"ok": "✔", "FAIL": "✘", "n/a": "–"}
    rows = [
        (symbol[criterion_mark(c)], c["tier"], c["name"], criterion_value(c))
        for c in verdict["criteria"]
    ]
    name = "+".join(state.combinations[index])
    design = design_text(verdict)
    caveats = caveat_texts(verdict)
    return (
        f"<p>{prefix} of <b>{_e(name)}</b> on <b>{_e(scale)}</b>, against the seed note's "
        f"criteria: {tiers}"
        + (f" <b>{_e(design)}</b>" if design else "")
        + "</p>"
        + _table(("", "tier", "criterion", "value"), rows)
        + (
            '<p class="caveats"><b>Caveats</b></p><ul>'
            + "".join(f"<li>{_e(t)}</li>" for t in caveats)
            + "</ul>"
            if caveats
            else "<p>Caveats: none.</p>"
        )
    )


def _strategies(state: RunState, docs: Any, index: int) -> str:
    """Every fusion of `fusion.compare` for the fused combination, side by side (the same
    cells as the dashboard and the console), with each fusion's flags fold by fold."""
    from dfu_tui.runs.strategies import cells, columns, strategies_of, title

    name = "+".join(state.combinations[index])
    found, so_far = strategies_of(docs.config, state, docs.summary, state.combinations[index])
    if found is None:
        return ""
    rows = [cells(r, found["metric"]) for r in found["rows"]]
    flags = [
        (r["name"], f"fold {f['fold']}", f["level"].upper(), f["rule"], f["detail"])
        for r in found["rows"]
        for f in r["flags"]
        if f["level"] == "collapse"
    ]
    out = f"<h2>Fusion strategies</h2><p>{_e(title(name, found, so_far))}.</p>" + _table(
        columns(found), rows
    )
    if flags:
        out += "<p>Collapse flags of each fusion:</p>" + _table(
            ("fusion", "fold", "level", "rule", "numbers"), flags
        )
    return out


def both(m: Mapping[str, Any]) -> str:
    """`unweighted / quadratic` kappa."""
    return f"{_num(m['kappa'])} / {_num(m['quadratic_kappa'])}"


def _clinical_table(state: RunState, index: int) -> str:
    """Per class sensitivity, specificity and one-vs-rest ROC AUC, and the Brier score: the
    mean over the validation folds of the fused combination and of each branch alone."""
    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for f in folds:
        rows.append(("+".join(f["combinations"][index]["modalities"]), f["combinations"][index]))
        rows += [(f"{b} alone", m) for b, m in f["branches"].items()]
    if not any(m.get("brier") is not None for _, m in rows):
        return "<p>Sensitivity, specificity, ROC AUC and calibration: not in this run's log.</p>"

    def mean(name: str, key: str, c: str | None = None) -> object:
        values = [
            v
            for label, m in rows
            if label == name
            and (v := (m.get(key) if c is None else (m.get(key) or {}).get(c))) is not None
        ]
        return fmean(values) if values else None

    names = list(dict.fromkeys(label for label, _ in rows))
    table = []
    for name in names:
        n = sum(int(m.get("n") or 0) for label, m in rows if label == name)
        for c in CLASSES:
            table.append(
                [
                    name,
                    c,
                    _num(mean(name, "sensitivity", c)),
                    _num(mean(name, "specificity", c)),
                    _num(mean(name, "roc_auc", c)),
                    _num(mean(name, "brier")) if c == CLASSES[0] else "",
                    str(n) if c == CLASSES[0] else "",
                ]
            )
    head = ["", "class", "sensitivity", "specificity", "ROC AUC (one vs rest)", "Brier", "n"]
    return (
        "<h2>Sensitivity, specificity, discrimination and calibration</h2>"
        f"<p>Means over the {len(folds)} validation folds, each class against the other two. "
        "Brier: the multi-class Brier score of the probabilities (0 perfect, 2 worst; a "
        "uniform guess 0.667); fusion averages probabilities, so their calibration decides "
        "what a weight means. n: validation samples summed over the folds.</p>"
        + _table(head, table)
    )


def _fold_table(state: RunState, index: int) -> str:
    folds = sorted(state.fold_results, key=lambda f: f["fold"])
    if not folds:
        return "<p>No fold has finished yet.</p>"
    branches = list(folds[0]["branches"])
    head = [
        "fold",
        "n",
        "kappa (unweighted)",
        "quadratic kappa",
        "accuracy",
        "macro F1",
        *(f"{b} alone: kappa / quadratic" for b in branches),
    ]
    rows = []
    for f in folds:
        c = f["combinations"][index]
        rows.append(
            [
                state.fold_name(f["fold"]),
                c.get("n", "-"),
                _num(c["kappa"]),
                _num(c["quadratic_kappa"]),
                _num(c.get("accuracy")),
                _num(c.get("macro_f1")),
                *(both(f["branches"][b]) for b in branches),
            ]
        )
    return _table(head, rows, "folds")


def _every_fold_table(state: RunState) -> str:
    """Every combination on every fold (folded away: 31 x 10 rows in a search)."""
    folds = sorted(state.fold_results, key=lambda f: f["fold"])
    rows = [
        (
            state.fold_name(f["fold"]),
            "+".join(c["modalities"]),
            c.get("n", "-"),
            _num(c["kappa"]),
            _num(c["quadratic_kappa"]),
            _num(c.get("accuracy")),
            _num(c.get("macro_f1")),
        )
        for f in folds
        for c in f["combinations"]
    ]
    if not rows:
        return ""
    head = (
        "fold",
        "combination",
        "n",
        "kappa (unweighted)",
        "quadratic kappa",
        "accuracy",
        "macro F1",
    )
    return (
        f"<details><summary>Every combination on every fold ({len(rows)} rows)</summary>"
        + _table(head, rows)
        + "</details>"
    )


def _combination_table(state: RunState) -> str:
    from statistics import fmean, stdev

    folds = cv_folds(state)
    if not folds:
        return ""

    def ms(vals: list[float]) -> str:
        if not vals:
            return "-"
        return f"{fmean(vals):.3f}" + (f" ± {stdev(vals):.3f}" if len(vals) > 1 else "")

    def col(i: int, key: str) -> list[float]:
        values = [figure(f["combinations"][i], key) for f in folds]
        return [v for v in values if v is not None]

    ranked = state.criteria_means()
    reference = next((r.reference for r in ranked.values() if r.reference), None)
    short = "QWK" if state.metric == "quadratic_kappa" else "κ"
    rows = []
    for i, first in enumerate(folds[0]["combinations"]):
        mine = ranked.get("+".join(first["modalities"]))
        rows.append(
            [
                "+".join(first["modalities"]),
                ms(col(i, "kappa")),
                ms(col(i, "quadratic_kappa")),
                ms(col(i, "accuracy")),
                ms(col(i, "macro_f1")),
                "-" if mine is None or mine.versus is None else f"{mine.versus:+.3f}",
                sum(len(f["combinations"][i]["flags"]) for f in folds),
            ]
        )
    return _table(
        (
            "combination",
            "kappa (unweighted)",
            "quadratic kappa",
            "accuracy",
            "macro F1",
            f"vs {reference or 'reference'} ({short}, common rows, what ranks)",
            "flags",
        ),
        rows,
    ) + (
        f"<p>Mean ± sample sd over {len(folds)} validation folds. "
        + (
            f"With {len(rows)} combinations, the best mean is selected from {len(rows)} and is "
            "optimistic.</p>"
            if len(rows) > 1
            else "</p>"
        )
    )


def _coverage(state: RunState, docs: Any) -> str:
    """Samples per branch over the first repeat's validation folds (each sample once)."""
    folds = [f for f in cv_folds(state) if f.get("repeat", 1) == 1]
    lines = []
    if folds:
        index = fused_index(state.combinations)
        total = sum(int(f["combinations"][index].get("n") or 0) for f in folds)
        lines.append(f"{total} samples in the {len(folds)} finished validation folds")
        for b in folds[0]["branches"]:
            n = sum(int(f["branches"][b].get("n") or 0) for f in folds)
            lines.append(f"{b}: {n} samples" + (" with images" if b != "metadata" else ""))
    features = docs.features
    if features is not None:
        left = ", ".join(k for k in features.get("excluded", {}) if not k.startswith("label"))
        lines.append(
            f"{len(features.get('used', []))} metadata features used"
            + (f"; left out: {left}" if left else "")
        )
    if not lines:
        return "<p>No coverage yet: no fold has finished.</p>"
    return "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in lines) + "</ul>"


def versions() -> list[tuple[str, str]]:
    out = [("Python", platform.python_version())]
    for name in ("dfu-tui", *VERSIONS):
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def build_report(run: RunDir, now: float | None = None) -> str:
    """The HTML text of the report of one run."""
    now = time.time() if now is None else now
    state = load_state(run.path)
    if not state.combinations:
        raise InputError(f"{run.events}: the run has not started (no run_started event)")
    docs = read_docs(run)
    fingerprint = read_json(run.fingerprint) or {}
    index = fused_index(state.combinations)
    fused = "+".join(state.combinations[index])
    from dfu_tui.runs.events import read_regular

    try:  # no link, no FIFO wait, at most 1 MB; not UTF-8 is said, not raised
        config_text = read_regular(run.config)[: 1 << 20].decode("utf-8")
    except UnicodeDecodeError:
        config_text = f"(cannot read {run.config}: not UTF-8 text)"
    except OSError as exc:
        config_text = f"(cannot read {run.config}: {exc.strerror or exc})"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>dfu-tui report {_e(state.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Run {_e(state.run_id)}: {_e(fused)}</h1>",
        _banner(state, now),
        f"<p>Status <b>{_e(state.effective_status(now))}</b>; {state.folds_done} of "
        f"{state.folds} folds, {len(state.done)} of {len(state.tasks)} tasks; "
        f"{len(state.combinations)} combination(s). Generated "
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(now)))}."
        + (
            f" <b>{state.skipped} damaged line(s) of the event log were skipped.</b>"
            if state.skipped
            else ""
        )
        + "</p>",
        "<h2>Verdict</h2>",
        _verdict(state, docs, index),
        _later_patients(docs),
        _strategies(state, docs, index),
        "<h2>Per fold</h2>",
        f"<p>{_e(fused)} on each validation fold; each branch alone on its own samples.</p>",
        _fold_table(state, index),
    ]
    if state.fold_results:
        fig, axes = _new_figure(7.5, 3.0)
        draw(axes[0][0], fold_kappa_figure(state))
        parts.append(
            _figure(fig, "Kappa of each validation fold on both scales; dashed: the mean", "folds")
        )
    parts += ["<h2>Combinations</h2>", _combination_table(state), _every_fold_table(state)]
    heatmap = pooled_confusion(state, index)
    if heatmap is not None:
        fig, axes = _new_figure(4.2, 3.6)
        draw_heatmap(axes[0][0], heatmap)
        f1_fig, f1_axes = _new_figure(8.0, 3.2)
        draw(f1_axes[0][0], mean_f1_figure(state, index))
        parts += [
            "<h2>Confusion and per-class F1</h2>",
            _figure(
                fig,
                f"{fused}: counts summed over the validation folds, each cell shaded by its "
                "share of the true class's row.",
                "confusion",
            ),
            _figure(
                f1_fig,
                f"Per-class F1 averaged over the validation folds: {fused}, then each branch "
                "alone (on its own samples).",
                "f1",
            ),
            fold_confusion_figure(state, index),
            _clinical_table(state, index),
        ]
    parts.append("<h2>Fusion weight</h2>")
    parts.append(
        curve_section(run, state, docs.config, index)
        if state.fold_results
        else "<p>No fold has finished.</p>"
    )
    parts.append("<h2>Image branches by epoch</h2>")
    parts += image_task_figures(state) or ["<p>No image task has reported an epoch.</p>"]
    parts.append("<h2>Collapse flags</h2>")
    timeline = flag_timeline(state)
    if timeline.empty:
        parts.append("<p>No flag was raised.</p>")
    else:
        rows = max(3, len(timeline.yticks))
        fig, axes = _new_figure(8.0, 1.0 + 0.22 * rows)
        draw(axes[0][0], timeline)
        parts.append(
            _figure(fig, "Every collapse and warning flag, by when it was raised", "flags")
        )
    parts += [
        "<h2>Data and configuration</h2>",
        _coverage(state, docs),
        _table(
            ("", "value"),
            [
                ("dataset fingerprint", fingerprint.get("data", "-")),
                ("code version of the run", fingerprint.get("code_version", "-")),
            ],
        ),
        f"<pre>{_e(config_text)}</pre>",
        "<h2>Software</h2>",
        "<p>Installed where this report was written.</p>",
        _table(("package", "version"), versions()),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
