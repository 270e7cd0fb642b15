"""What each plot shows, as plain data: built from a run's state, drawn by the dashboard
(plotext, in the terminal) and by the report (matplotlib, as SVG). One definition, so the
terminal and the report never disagree about a series.

Nothing here imports a plotting library, Textual, TensorFlow or scikit-learn.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.records import FoldResult, figure
from dfu_tui.runs.events import Event
from dfu_tui.runs.state import RunState
from dfu_tui.text import plural

Kind = Literal["line", "scatter", "hline", "vline", "bar", "band"]


@dataclass(frozen=True)
class Series:
    """One labelled series. `hline` holds its level in `y`, `vline` its position in `x`;
    `band` holds the lower edge in `y` and the upper edge in `upper`. Series with the same
    `group` share a colour (a class's predicted share and its true share)."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    kind: Kind = "line"
    side: Literal["left", "right"] = "left"
    group: str = ""
    upper: tuple[float, ...] = ()


@dataclass(frozen=True)
class Figure:
    """A titled plot with labelled axes; `empty` says why there is nothing to draw yet."""

    title: str
    xlabel: str = ""
    ylabel: str = ""
    series: tuple[Series, ...] = ()
    ylabel_right: str = ""
    xticks: tuple[tuple[float, str], ...] = ()
    yticks: tuple[tuple[float, str], ...] = ()
    ylim: tuple[float, float] | None = None
    xlim: tuple[float, float] | None = None
    empty: str = ""

    def get(self, label: str) -> Series:
        """The series with this label (KeyError when there is none)."""
        for s in self.series:
            if s.label == label:
                return s
        raise KeyError(label)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.series]


@dataclass(frozen=True)
class Heatmap:
    """A row-normalised matrix with its counts (the confusion matrix)."""

    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    row_label: str = "true"
    column_label: str = "predicted"
    shares: tuple[tuple[float, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        shares = tuple(tuple(c / sum(row) if sum(row) else 0.0 for c in row) for row in self.counts)
        object.__setattr__(self, "shares", shares)


def fused_index(combinations: Sequence[Sequence[str]]) -> int:
    """The combination shown as 'fused': the one with the most modalities."""
    sizes = [len(c) for c in combinations]
    return sizes.index(max(sizes)) if sizes else 0


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float("nan") if v is None else float(v) for v in values)


# -- the running (or chosen) image task, epoch by epoch


def epoch_task(state: RunState, selected_epoch: int | None = None) -> str | None:
    """The task whose epochs are shown: the chosen epoch's, else the running task with
    epochs, else the last task that reported an epoch."""
    if selected_epoch is not None and state.epochs:
        return str(state.epochs[min(selected_epoch, len(state.epochs) - 1)]["task"])
    running = [t for t in sorted(state.running) if state.running[t]]
    if running:
        return running[0]
    return str(state.epochs[-1]["task"]) if state.epochs else None


def task_epochs(state: RunState, task: str) -> list[Event]:
    """The task's epochs in order; a resumed task's last attempt wins for each epoch (from
    the state's index by task: the cost does not grow with the rest of the run)."""
    by_epoch = state.epochs_by_task.get(task, {})
    return [by_epoch[k] for k in sorted(by_epoch)]


def best_epoch(state: RunState, task: str, epochs: Sequence[Event]) -> tuple[int | None, bool]:
    """Early stopping's best epoch (final when the task finished), else the best
    inner-validation kappa so far (early stopping watches it, mode max)."""
    if task in state.best_epochs:
        return state.best_epochs[task], True
    scored = [
        (float(k), int(e["epoch"]))
        for e in epochs
        if isinstance(k := e.get("val_kappa"), int | float)
    ]
    if not scored:
        return None, False
    top = max(k for k, _ in scored)
    return next(n for k, n in scored if k == top), False


def _task_title(task: str) -> str:
    fold, _, branch = task.partition("-")
    return f"{fold.replace('fold', 'fold ')} {branch}"


def epoch_figure(state: RunState, task: str | None) -> Figure:
    """Loss (right axis), train and inner-validation kappa (unweighted) over epochs, with
    early stopping's best epoch marked."""
    if task is None:
        return Figure("Training curve", empty="waiting for the first epoch of an image task")
    epochs = task_epochs(state, task)
    xs = tuple(float(e["epoch"]) for e in epochs)
    best, final = best_epoch(state, task, epochs)
    series = [
        Series("train kappa", xs, _floats([e.get("train_kappa") for e in epochs])),
        Series("early-stopping split kappa", xs, _floats([e.get("val_kappa") for e in epochs])),
        Series("loss", xs, _floats([e.get("loss") for e in epochs]), side="right"),
    ]
    if best is not None:
        label = f"best epoch {best}" if final else f"best so far {best}"
        series.append(Series(label, (float(best),), (), kind="vline"))
    top = int(epochs[-1]["max_epochs"]) if epochs else 1
    return Figure(
        f"{_task_title(task)}: kappa (unweighted{_inner_n(epochs, '; early-stopping split ')}) "
        "and loss by epoch",
        xlabel="epoch",
        ylabel="kappa",
        ylabel_right="loss",
        series=tuple(series),
        xticks=_int_ticks(1, max(top if len(xs) > 1 else 1, int(max(xs, default=1)))),
    )


def _inner_n(epochs: list[Event], prefix: str) -> str:
    """`prefix` and n=N, the size of the inner-validation split the epochs are scored on
    ("" when the log does not say)."""
    n = epochs[-1].get("val_n") if epochs else None
    return f"{prefix}n={n}" if n else ""


def share_figure(state: RunState, task: str | None) -> Figure:
    """Predicted share of each class on the inner-validation split over epochs, against
    the true shares (flat dashed lines, "true" in the legend): a collapse building up
    shows as one class taking over."""
    if task is None:
        return Figure("Prediction distribution", empty="waiting for the first epoch")
    epochs = task_epochs(state, task)
    xs = tuple(float(e["epoch"]) for e in epochs)
    series = []
    for c in CLASSES:
        shares = [(e.get("val_predicted_share") or {}).get(c) for e in epochs]
        series.append(Series(f"{c} predicted", xs, _floats(shares), group=c))
    last_true = (epochs[-1].get("val_true_share") or {}) if epochs else {}
    for c in CLASSES:
        if c in last_true:
            series.append(Series(f"{c} true", (), (float(last_true[c]),), kind="hline", group=c))
    top = int(epochs[-1]["max_epochs"]) if epochs else 1
    return Figure(
        f"{_task_title(task)}: predicted share by epoch "
        f"(early-stopping split{_inner_n(epochs, ' ')})",
        xlabel="epoch",
        ylabel="share",
        series=tuple(series),
        ylim=(0.0, 1.0),
        xticks=_int_ticks(1, max(top if len(xs) > 1 else 1, int(max(xs, default=1)))),
    )


def _int_ticks(low: int, high: int, most: int = 10) -> tuple[tuple[float, str], ...]:
    step = max(1, -(-(high - low + 1) // most))
    return tuple((float(k), str(k)) for k in range(low, high + 1, step))


# -- folds


def cv_folds(state: RunState) -> list[FoldResult]:
    """Finished cross-validation folds (not the hold-out), in order."""
    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    return sorted(folds, key=lambda f: f["fold"])


def fold_kappa_figure(state: RunState, combination: int | None = None) -> Figure:
    """Each finished fold's kappa of the fused combination (both scales) as points, with
    each scale's mean over the cross-validation folds as a flat line."""
    if not state.fold_results or not state.combinations:
        return Figure("Per-fold kappa", empty="after the first fold")
    i = fused_index(state.combinations) if combination is None else combination
    name = "+".join(state.combinations[i])
    folds = sorted(state.fold_results, key=lambda f: f["fold"])
    xs = tuple(float(f["fold"]) for f in folds)
    series = []
    for key, label in (("kappa", "kappa (unweighted)"), ("quadratic_kappa", "quadratic kappa")):
        ys = _floats([_metric(f, i, key) for f in folds])
        series.append(Series(label, xs, ys, kind="scatter", group=key))
        cv = [float(v) for f in cv_folds(state) if (v := _metric(f, i, key)) is not None]
        if cv:
            mean = statistics.fmean(cv)
            series.append(
                Series(
                    f"mean {label} {mean:.3f} ({plural(len(cv), 'fold')})",
                    (),
                    (mean,),
                    "hline",
                    group=key,
                )
            )
    ticks = tuple(
        (float(k), state.fold_name(k).replace("fold ", "")) for k in range(1, state.folds + 1)
    )
    # the axis starts at chance (kappa 0) or below: a 0.02 spread does not fill the height
    seen = [y for s in series for y in s.y if not math.isnan(y)]
    ylim = (min(0.0, min(seen)) - 0.05, min(1.0, max(seen) + 0.05)) if seen else None
    return Figure(
        f"{name}: kappa per validation fold (axis from 0 = chance)",
        xlabel="fold",
        ylabel="kappa",
        series=tuple(series),
        xticks=ticks,
        xlim=(0.5, state.folds + 0.5),
        ylim=ylim,
    )


def _metric(fold: FoldResult, combination: int, key: str) -> float | None:
    return figure(fold["combinations"][combination], key)


def confusion_heatmap(fold: Mapping[str, Any], combination: int) -> Heatmap:
    c = fold["combinations"][combination]
    return Heatmap(
        f"{'+'.join(c['modalities'])}: confusion, row-normalised (counts in cells)",
        CLASSES,
        CLASSES,
        tuple(tuple(int(v) for v in row) for row in c["confusion"]),
    )


def f1_figure(fold: Mapping[str, Any], combination: int) -> Figure:
    """Per-class F1 of the fused combination and of each branch alone."""
    fused = fold["combinations"][combination]
    xs = tuple(float(k) for k in range(len(CLASSES)))
    rows: list[tuple[str, Mapping[str, Any]]] = [("+".join(fused["modalities"]), fused)]
    rows += [(f"{b} alone", m) for b, m in fold["branches"].items()]
    if len(fused["modalities"]) == 1:
        rows = rows[:1]
    series = tuple(
        Series(label, xs, _floats([m["f1"].get(c) for c in CLASSES]), kind="bar", group=label)
        for label, m in rows
    )
    return Figure(
        "Per-class F1",
        xlabel="class",
        ylabel="F1",
        series=series,
        xticks=tuple((float(k), c) for k, c in enumerate(CLASSES)),
        ylim=(0.0, 1.0),
    )


# -- the fusion-weight curve


def curve_figure(
    name: str,
    grid: Sequence[float],
    mean: Sequence[float],
    sd: Sequence[float],
    configured: float | None,
    branches: Mapping[str, float],
    folds: int,
) -> Figure:
    """Mean validation kappa (unweighted) against the metadata weight, ±1 sample sd over
    folds as a band, the configured weight and the highest point marked, and each branch's
    mean kappa alone as a flat reference line."""
    xs = _floats(grid)
    m = _floats(mean)
    best = max(range(len(m)), key=lambda k: m[k])
    series = [Series(f"mean over {folds} folds", xs, m)]
    if folds > 1:
        s = _floats(sd)
        series.append(
            Series(
                "±1 sd",
                xs,
                tuple(a - b for a, b in zip(m, s, strict=True)),
                "band",
                upper=tuple(a + b for a, b in zip(m, s, strict=True)),
            )
        )
    if configured is not None:  # None: the run's config could not be read
        at = min(range(len(xs)), key=lambda k: abs(xs[k] - configured))
        label = f"configured {configured:.2f}: {m[at]:.3f}"
        series.append(Series(label, (configured,), (), "vline"))
    series.append(
        Series(f"highest {m[best]:.3f} at {xs[best]:.2f}", (xs[best],), (m[best],), "scatter")
    )
    for b, kappa in branches.items():
        # each branch on its own samples (an image branch: those with its images)
        series.append(
            Series(f"{b} alone {kappa:.3f} (all its samples)", (), (kappa,), "hline", group=b)
        )
    return Figure(
        f"{name}: kappa (unweighted) by metadata weight",
        xlabel="metadata weight",
        ylabel="kappa",
        series=tuple(series),
        xticks=tuple((w / 10, f"{w / 10:.1f}") for w in range(0, 11, 2)),
    )


def branch_means(state: RunState, branches: Sequence[str]) -> dict[str, float]:
    """Mean unweighted kappa of each branch alone over the cross-validation folds."""
    out = {}
    for b in branches:
        vals = [
            float(k)
            for f in cv_folds(state)
            if b in f["branches"] and (k := f["branches"][b]["kappa"]) is not None
        ]
        if vals:
            out[b] = statistics.fmean(vals)
    return out


# -- flags


def flag_timeline(state: RunState) -> Figure:
    """Every flag raised, by time since the run started (rows: task or combination), with
    collapse and warning as separate series."""
    if not state.flags:
        return Figure("Collapse flags over time", empty="no flag was raised")
    start = state.started or min(float(f.get("ts") or 0) for f in state.flags)
    rows: list[str] = []

    def row(f: Event) -> str:
        if f.get("scope") == "epoch":
            return str(f.get("task"))
        return f"fold {f.get('fold')} " + "+".join(f.get("combination", []))

    for f in state.flags:
        if row(f) not in rows:
            rows.append(row(f))
    series = []
    for level in ("collapse", "warning"):
        mine = [f for f in state.flags if f["level"] == level]
        if mine:
            series.append(
                Series(
                    level,
                    tuple(float(f.get("ts") or start) - start for f in mine),
                    tuple(float(rows.index(row(f))) for f in mine),
                    "scatter",
                    group=level,
                )
            )
    return Figure(
        "Flags raised, by seconds since the run started",
        xlabel="seconds since start",
        series=tuple(series),
        yticks=tuple((float(k), r) for k, r in enumerate(rows)),
    )
