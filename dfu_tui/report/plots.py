"""The report's figures: the series of `runs.figures` drawn by matplotlib as inline SVG (the
same series the dashboard draws), small multiples per fold, the fusion-weight curve."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dfu_tui.data.schema import CLASSES
from dfu_tui.runs.figures import (
    Figure,
    Heatmap,
    confusion_heatmap,
    cv_folds,
    epoch_figure,
    share_figure,
)
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import RunState
from dfu_tui.runs.tasks import parse_task_id

if TYPE_CHECKING:
    from matplotlib.axes import Axes

from dfu_tui.report.html import esc

# Colours of the series, in order of first appearance (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
LEVEL_COLOURS = {"collapse": "#D55E00", "warning": "#E69F00"}


def svg(fig: Any) -> str:
    """The figure as SVG. Text stays text in a generic sans-serif family (the viewer's own
    font: nothing is fetched), which is several times faster to write than glyph paths."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        # "tight": no label is cut at the figure's edge (the epoch axis's was)
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def embed(fig: Any, caption: str, name: str) -> str:
    data = base64.b64encode(svg(fig).encode("utf-8")).decode("ascii")
    return (
        f'<figure data-figure="{esc(name)}"><img alt="{esc(caption)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
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


# Each series group also gets a marker, a line style and a bar hatch of its own: nothing is
# told by colour alone (a grey print, a colour-blind reader).
MARKERS = ("o", "^", "s", "D", "*", "P", "X")
LINESTYLES = ("-", "--", "-.", ":")
HATCHES = ("", "//", "..", "xx", "\\\\", "++")


class Colours:
    """A colour, marker, line style and hatch per series group, in order of first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.order: dict[str, int] = {}

    def __call__(self, key: str) -> str:
        if key not in self.seen:
            self.order[key] = len(self.seen)
            self.seen[key] = LEVEL_COLOURS.get(key) or PALETTE[len(self.seen) % len(PALETTE)]
        return self.seen[key]

    def style(self, key: str) -> tuple[str, str, str]:
        """(marker, line style, hatch) of a group."""
        self(key)
        i = self.order[key]
        return MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)], HATCHES[i % len(HATCHES)]


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
    ax.set_title(title if not f.empty else f"{title}: {f.empty}", fontsize=11)
    if f.empty:
        ax.set_axis_off()
        return
    ax.set_xlabel(f.xlabel, fontsize=10)
    ax.set_ylabel(f.ylabel, fontsize=10)
    right = ax.twinx() if any(s.side == "right" for s in f.series) else None
    if right is not None:
        right.set_ylabel(f.ylabel_right, fontsize=10)
    bars = [s for s in f.series if s.kind == "bar"]
    width = 0.8 / max(1, len(bars))
    handles: list[Any] = []
    for s in f.series:
        h: Any
        target = right if s.side == "right" and right is not None else ax
        c = colours(s.group or s.label)
        marker, linestyle, hatch = colours.style(s.group or s.label)
        if s.kind == "line":
            (h,) = target.plot(
                s.x,
                s.y,
                color=c,
                label=s.label,
                marker=marker,
                markevery=max(1, len(s.x) // 12),
                markersize=4,
                linestyle=linestyle,
            )
        elif s.kind == "band":
            h = target.fill_between(s.x, s.y, s.upper, color=c, alpha=0.2, label=s.label, lw=0)
        elif s.kind == "scatter":
            h = target.scatter(s.x, s.y, color=c, label=s.label, zorder=3, s=22, marker=marker)
        elif s.kind in ("hline", "vline"):
            # a reference line: its group's style, its marker hollow along it (in the
            # legend too), so it is told apart without colour and not read as a data point
            if s.kind == "hline":
                target.axhline(s.y[0], color=c, ls=linestyle, lw=1)
                target.plot(
                    [0.25, 0.5, 0.75],
                    [s.y[0]] * 3,
                    transform=target.get_yaxis_transform(),
                    ls="",
                    marker=marker,
                    mfc="none",
                    color=c,
                    ms=5,
                )
            else:
                target.axvline(s.x[0], color=c, ls=":", lw=1.2)
                target.plot(
                    [s.x[0]],
                    [0.5],
                    transform=target.get_xaxis_transform(),
                    ls="",
                    marker=marker,
                    mfc="none",
                    color=c,
                    ms=5,
                )
            from matplotlib.lines import Line2D

            h = Line2D(
                [],
                [],
                color=c,
                ls=linestyle if s.kind == "hline" else ":",
                marker=marker,
                mfc="none",
                label=s.label,
            )
        else:  # bar
            j = bars.index(s)
            shift = (j - (len(bars) - 1) / 2) * width
            h = target.bar(
                [x + shift for x in s.x],
                s.y,
                width=width * 0.9,
                color=c,
                label=s.label,
                hatch=hatch,
                edgecolor="white",
            )
        handles.append(h)
    if f.xticks:
        ax.set_xticks([t for t, _ in f.xticks], [label for _, label in f.xticks])
    if f.yticks:
        ax.set_yticks([t for t, _ in f.yticks], [label for _, label in f.yticks])
    if f.ylim:
        ax.set_ylim(*f.ylim)
    if f.xlim:
        ax.set_xlim(*f.xlim)
    ax.tick_params(labelsize=9)
    if right is not None:
        right.tick_params(labelsize=9)
    ax.grid(alpha=0.25)
    if legend and handles:
        if bars:  # beside the bars, never over them
            ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.8)


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
    ax.set_xlabel(h.column_label, fontsize=10)
    ax.set_ylabel(h.row_label, fontsize=10)
    ax.set_title(h.title, fontsize=11)


def grid(n: int, cols: int = 4) -> tuple[int, int]:
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
        rows, cols = grid(len(mine))
        for maker, what in (
            (
                epoch_figure,
                "training curve: train and early-stopping split kappa (unweighted), "
                "loss on the right axis, early stopping's best epoch dotted",
            ),
            (
                share_figure,
                "predicted share of each class on the early-stopping split by "
                "epoch; dashed: the true share (a collapse shows as one class taking over)",
            ),
        ):
            fig, axes = new_figure(3.2 * cols, 2.4 * rows + 0.3, rows, cols)
            colours = Colours()
            for k, ax in enumerate(axes.flat):
                if k < len(mine):
                    panel = state.fold_name(parse_task_id(mine[k])[0])
                    draw(ax, maker(state, mine[k]), colours, legend=k == 0, title=panel)
                else:
                    ax.set_axis_off()
            out.append(embed(fig, f"{branch}, every fold: {what}", f"{maker.__name__}-{branch}"))
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
    rows, cols = grid(len(folds), cols=5)
    fig, axes = new_figure(2.6 * cols, 2.5 * rows + 0.3, rows, cols)
    for k, ax in enumerate(axes.flat):
        if k >= len(folds):
            ax.set_axis_off()
            continue
        h = confusion_heatmap(folds[k], index)
        draw_heatmap(ax, replace(h, title=state.fold_name(int(folds[k]["fold"]))))
    fused = "+".join(state.combinations[index])
    return embed(
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
        return f"<p>{esc(view.problem[:1].upper() + view.problem[1:])}.</p>"
    mfig, axes = new_figure(7.5, 3.6)
    draw(axes[0][0], view.figure)
    return embed(
        mfig,
        f"Mean validation kappa (unweighted) over {view.folds} folds as the metadata weight "
        "goes 0 to 1 (images keep their ratio); band: ±1 sample sd over folds; dashed: each "
        "branch alone, mean kappa over the folds on all its samples. Measured on the "
        "validation folds: it describes the run and must not be used to choose weights.",
        "fusion-curve",
    )


def reliability_figure(state: RunState, index: int) -> Figure | None:
    """A reliability diagram pooled over the cross-validation folds: for each confidence bin
    (the predicted class's probability), the share of those predictions that were right,
    the fused combination's and each branch's; the diagonal is perfect calibration. None for
    runs logged before calibration was measured."""
    from dfu_tui.runs.figures import Series

    folds = cv_folds(state)
    if not folds or "reliability" not in folds[0]["combinations"][index]:
        return None
    fused = folds[0]["combinations"][index]
    rows: list[tuple[str, list[Mapping[str, Any]]]] = [
        ("+".join(fused["modalities"]), [f["combinations"][index] for f in folds])
    ]
    if len(fused["modalities"]) > 1:
        rows += [(f"{b} alone", [f["branches"][b] for f in folds]) for b in folds[0]["branches"]]
    series = [Series("perfect calibration", (0.0, 1.0), (0.0, 1.0), kind="line", group="ideal")]
    for label, ms in rows:
        pooled: dict[tuple[float, float], list[float]] = {}  # bin -> [n, sum conf, sum hits]
        for m in ms:
            for low, high, n, confidence, accuracy in m.get("reliability") or []:
                cell = pooled.setdefault((low, high), [0.0, 0.0, 0.0])
                cell[0] += n
                cell[1] += n * confidence
                cell[2] += n * accuracy
        points = sorted((c[1] / c[0], c[2] / c[0]) for c in pooled.values() if c[0] > 0)
        if points:
            xs, ys = zip(*points, strict=True)
            series.append(Series(label, tuple(xs), tuple(ys), kind="line", group=label))
    return Figure(
        f"Reliability over {len(folds)} validation folds",
        xlabel="predicted class's probability (mean in its bin)",
        ylabel="share right",
        series=tuple(series),
        xlim=(0.0, 1.0),
        ylim=(0.0, 1.0),
    )
