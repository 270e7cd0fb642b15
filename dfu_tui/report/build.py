"""Building the report: its sections in order, as one HTML document."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dfu_tui.errors import InputError
from dfu_tui.runs.catalog import read_docs, read_json
from dfu_tui.runs.figures import (
    flag_timeline,
    fold_kappa_figure,
    fused_index,
)
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import load_state
from dfu_tui.text import plural

if TYPE_CHECKING:
    pass

from dfu_tui.report.html import STYLE, esc, html_table
from dfu_tui.report.plots import (
    curve_section,
    draw,
    draw_heatmap,
    embed,
    fold_confusion_figure,
    image_task_figures,
    mean_f1_figure,
    new_figure,
    pooled_confusion,
    reliability_figure,
)
from dfu_tui.report.sections import (
    banner,
    clinical_table,
    combination_table,
    coverage,
    every_fold_table,
    features_section,
    final_model_section,
    flags_table,
    fold_table,
    later_patients,
    resources_table,
    strategies_section,
    verdict_section,
    versions,
)


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
        f"<title>dfu-tui report {esc(state.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Run {esc(state.run_id)}: {esc(fused)}</h1>",
        banner(state, now),
        f"<p>Status <b>{esc(state.effective_status(now))}</b>; {state.folds_done} of "
        f"{state.folds} folds, {len(state.done)} of {len(state.tasks)} tasks; "
        f"{plural(len(state.combinations), 'combination')}. Generated "
        f"{esc(time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(now)))}."
        + (
            f" <b>{state.skipped} damaged line(s) of the event log were skipped.</b>"
            if state.skipped
            else ""
        )
        + "</p>",
        "<h2>Verdict</h2>",
        verdict_section(state, docs, index),
        later_patients(docs),
        strategies_section(state, docs, index),
        "<h2>Per fold</h2>",
        f"<p>{esc(fused)} on each validation fold; each branch alone on all its samples.</p>",
        fold_table(state, index),
    ]
    if state.fold_results:
        fig, axes = new_figure(7.5, 3.0)
        draw(axes[0][0], fold_kappa_figure(state))
        parts.append(
            embed(fig, "Kappa of each validation fold on both scales; dashed: the mean", "folds")
        )
    parts += ["<h2>Combinations</h2>", combination_table(state), every_fold_table(state)]
    heatmap = pooled_confusion(state, index)
    if heatmap is not None:
        fig, axes = new_figure(4.2, 3.6)
        draw_heatmap(axes[0][0], heatmap)
        f1_fig, f1_axes = new_figure(8.0, 3.2)
        draw(f1_axes[0][0], mean_f1_figure(state, index))
        parts += [
            "<h2>Confusion and per-class F1</h2>",
            embed(
                fig,
                f"{fused}: counts summed over the validation folds, each cell shaded by its "
                "share of the true class's row.",
                "confusion",
            ),
            embed(
                f1_fig,
                f"Per-class F1 averaged over the validation folds: {fused}, then each branch "
                "alone (on all its samples).",
                "f1",
            ),
            fold_confusion_figure(state, index),
            clinical_table(state, index),
        ]
        reliability = reliability_figure(state, index)
        if reliability is not None:
            r_fig, r_axes = new_figure(6.0, 4.2)
            draw(r_axes[0][0], reliability)
            parts.append(
                embed(
                    r_fig,
                    "Reliability: of the predictions made with a given probability, the share "
                    "that was right (pooled over the validation folds); above the diagonal: "
                    "under-confident, below: over-confident. Fusion averages probabilities, so "
                    "a branch's calibration decides what its weight means.",
                    "reliability",
                )
            )
    parts += ["<h2>Features: what carries the metadata branch</h2>", features_section(state, docs)]
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
        fig, axes = new_figure(8.0, 1.0 + 0.22 * rows)
        draw(axes[0][0], timeline)
        parts.append(embed(fig, "Every collapse and warning flag, by when it was raised", "flags"))
        parts.append(flags_table(state))
    parts += ["<h2>Final model</h2>", final_model_section(run)]
    parts += [
        "<h2>Data and configuration</h2>",
        coverage(state, docs),
        html_table(
            ("", "value"),
            [
                ("dataset fingerprint", fingerprint.get("data", "-")),
                ("code version of the run", fingerprint.get("code_version", "-")),
            ],
        ),
        f"<pre>{esc(config_text)}</pre>",
        "<h2>Resources</h2>",
        resources_table(state),
        "<h2>Software</h2>",
        "<p>Installed where this report was written.</p>",
        html_table(("package", "version"), versions()),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
