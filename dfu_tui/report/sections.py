"""The report's sections: banner, verdict, strategies, clinical scores, fold and combination
tables, coverage and versions."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Mapping
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
from dfu_tui.runs.figures import (
    cv_folds,
    fused_index,
)
from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import RunState, verdict_so_far

if TYPE_CHECKING:
    pass

from dfu_tui.report.html import esc, html_table, num

VERSIONS = ("tensorflow", "scikit-learn", "numpy", "matplotlib", "textual")


def banner(state: RunState, now: float) -> str:
    status = state.effective_status(now)
    if status == "completed":
        return ""
    done = f"{state.folds_done} of {state.folds} folds finished"
    reason = f": {esc(state.reason)}" if state.reason else ""
    cls = "banner failed" if status == "failed" else "banner"
    return (
        f'<p class="{cls}"><b>Partial report</b>: the run is <b>{esc(status)}</b>{reason}; '
        f"{done}. Every figure and table covers the finished folds only.</p>"
    )


def later_patients(docs: Any) -> str:
    """The selection (on common rows) and the temporal hold-out, with its interval and its
    gap split into case mix and era, from summary.json."""
    summary = docs.summary or {}
    out = []
    if summary.get("selection"):
        out.append(f"<p>{esc(selection_text(summary['selection']))}</p>")
    holdout = summary.get("holdout")
    if holdout:
        out.append("<h3>Temporal hold-out</h3><ul>")
        out += [
            f"<li>{esc(holdout_text(holdout['metric'], holdout, r))}</li>"
            for r in holdout["combinations"]
        ]
        out.append(f"</ul><p>Interval: {esc(str(holdout.get('interval', 'none')))}.</p>")
    return "".join(out)


def verdict_section(state: RunState, docs: Any, index: int) -> str:
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
        f"<p>{prefix} of <b>{esc(name)}</b> on <b>{esc(scale)}</b>, against the success "
        f"criteria (what each tier tests and where its thresholds come from: dfu-tui's "
        f"docs/criteria.md): {tiers}"
        + (f" <b>{esc(design)}</b>" if design else "")
        + "</p>"
        + html_table(("", "tier", "criterion", "value"), rows)
        + (
            '<p class="caveats"><b>Caveats</b></p><ul>'
            + "".join(f"<li>{esc(t)}</li>" for t in caveats)
            + "</ul>"
            if caveats
            else "<p>Caveats: none.</p>"
        )
    )


def strategies_section(state: RunState, docs: Any, index: int) -> str:
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
    out = f"<h2>Fusion strategies</h2><p>{esc(title(name, found, so_far))}.</p>" + html_table(
        columns(found), rows
    )
    if flags:
        out += "<p>Collapse flags of each fusion:</p>" + html_table(
            ("fusion", "fold", "level", "rule", "numbers"), flags
        )
    return out


def both(m: Mapping[str, Any]) -> str:
    """`unweighted / quadratic` kappa."""
    return f"{num(m['kappa'])} / {num(m['quadratic_kappa'])}"


def clinical_table(state: RunState, index: int) -> str:
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
                    num(mean(name, "sensitivity", c)),
                    num(mean(name, "specificity", c)),
                    num(mean(name, "roc_auc", c)),
                    num(mean(name, "brier")) if c == CLASSES[0] else "",
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
        + html_table(head, table)
    )


def fold_table(state: RunState, index: int) -> str:
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
                num(c["kappa"]),
                num(c["quadratic_kappa"]),
                num(c.get("accuracy")),
                num(c.get("macro_f1")),
                *(both(f["branches"][b]) for b in branches),
            ]
        )
    return html_table(head, rows, "folds")


def every_fold_table(state: RunState) -> str:
    """Every combination on every fold (folded away: 31 x 10 rows in a search)."""
    folds = sorted(state.fold_results, key=lambda f: f["fold"])
    rows = [
        (
            state.fold_name(f["fold"]),
            "+".join(c["modalities"]),
            c.get("n", "-"),
            num(c["kappa"]),
            num(c["quadratic_kappa"]),
            num(c.get("accuracy")),
            num(c.get("macro_f1")),
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
        + html_table(head, rows)
        + "</details>"
    )


def combination_table(state: RunState) -> str:
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
    return html_table(
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


def coverage(state: RunState, docs: Any) -> str:
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
    return "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>"


def versions() -> list[tuple[str, str]]:
    out = [("Python", platform.python_version())]
    for name in ("dfu-tui", *VERSIONS):
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def resources_table(state: RunState) -> str:
    """What each finished task took and used: where it ran, its seconds, CPU (% of one core:
    200 % is two cores busy), peak memory and a GPU's peak memory (measured inside the task's
    process)."""
    from dfu_tui.runs.describe import megabytes

    rows = []
    for task in dict.fromkeys(state.started_tasks):  # a resumed task once
        if task not in state.done:
            continue
        used = state.usage.get(task, {})
        rows.append(
            (
                task,
                state.nodes.get(task, "-"),
                f"{state.done[task]:.1f}",
                f"{used['cpu_percent']:.0f}" if "cpu_percent" in used else "-",
                megabytes(used["peak_rss_mb"]) if "peak_rss_mb" in used else "-",
                megabytes(used["gpu_peak_mb"]) if "gpu_peak_mb" in used else "-",
            )
        )
    if not rows:
        return "<p>No task has finished.</p>"
    note = (
        "<p>Each finished task: where it ran, its seconds, its CPU as % of one core (200 % "
        "is two cores busy), and its process's peak memory; runs logged before this was "
        "measured show -.</p>"
    )
    head = ("task", "node", "seconds", "CPU % of a core", "peak memory", "GPU peak memory")
    return note + html_table(head, rows)


def features_section(state: RunState, docs: Any, top: int = 10) -> str:
    """What carries the metadata branch: the leakage radar's table (each column's mean drop
    in kappa when shuffled on the validation fold, its single-feature kappa inside the
    training fold, how often it was among the top), its flags, and the paired with/without
    comparison of a feature group when the run measured one."""
    from dfu_tui.engine.paired import summarize_comparison, summarize_radar
    from dfu_tui.runs.figures import cv_folds

    folds = cv_folds(state)
    cfg = docs.config
    radar = summarize_radar(folds, cfg.radar.top if cfg is not None else 5)
    comparison = summarize_comparison(folds)
    if radar is None and comparison is None:
        return (
            "<p>The run measured no feature importance (radar.enabled = false, or no "
            "metadata branch, or no fold finished).</p>"
        )
    out = []
    if radar is not None:
        out.append(
            f"<p>Leakage radar over {radar['folds']} validation folds: permutation importance "
            "(mean drop in unweighted kappa when the column is shuffled on the validation "
            "fold, ± sd over folds) and single-feature kappa (a depth-3 tree on that column "
            "alone, patient-grouped CV inside the training fold). A treatment column among "
            "the top says the clinician's choice may carry the label.</p>"
        )
        rows = [
            (
                r["feature"],
                ", ".join(r["groups"]) or "-",
                num(r["importance"])
                + (
                    f" ± {num(r['importance_sd_over_folds'])}"
                    if r.get("importance_sd_over_folds") is not None
                    else ""
                ),
                num(r["single_kappa"]),
                f"{r['top_in_folds']} of {radar['folds']}",
            )
            for r in radar["features"][:top]
        ]
        out.append(
            html_table(
                ("feature", "groups", "importance (κ drop)", "single-feature κ", "top in folds"),
                rows,
            )
        )
        if radar["flags"]:
            out.append(
                html_table(
                    ("fold", "level", "rule", "what"),
                    [(f["fold"], f["level"], f["rule"], f["detail"]) for f in radar["flags"]],
                )
            )
        else:
            out.append("<p>The radar raised no flag.</p>")
    if comparison is not None:
        out.append(
            f"<p>With and without the <b>{esc(comparison['group'])}</b> group, paired on the "
            f"same {comparison['samples']} validation samples of each fold (each side's forest "
            f"averaged over {comparison.get('forest_seeds', 1)} seed(s)); 95 % intervals "
            "corrected for overlapping training sets.</p>"
        )
        pairs: list[tuple[object, ...]] = []
        for row in comparison["rows"]:
            for scale in ("kappa", "quadratic_kappa"):
                k = row[scale]
                low, high = k["ci95"]
                pairs.append(
                    (
                        "+".join(row["modalities"]),
                        SCALE_NAMES.get(scale, scale),
                        num(k["mean_with"]),
                        num(k["mean_without"]),
                        f"{k['mean_difference']:+.3f} [{num(low)}, {num(high)}]",
                        "yes" if k["distinguishable"] else "no",
                        k["folds"],
                    )
                )
        out.append(
            html_table(
                ("", "scale", "with", "without", "difference [95% CI]", "distinguishable", "folds"),
                pairs,
            )
        )
    return "".join(out)


#: The most flags the report lists one by one (the timeline shows them all).
MOST_FLAGS = 60


def flags_table(state: RunState) -> str:
    """Each flag named: when, where (a task's epoch, or a fold's combination and fusion),
    its level, its rule and its numbers (the rule's class and shares)."""
    start = state.started or 0.0
    rows = []
    for f in state.flags[:MOST_FLAGS]:
        if f.get("scope") == "epoch":
            where = f"{f.get('task')} epoch {f.get('epoch')}"
        else:
            where = f"fold {f.get('fold')} " + "+".join(f.get("combination") or [])
            if f.get("strategy"):
                where += f" ({f['strategy']})"
        rows.append(
            (
                f"{float(f.get('ts') or start) - start:.0f}",
                where,
                f.get("level", ""),
                f.get("rule", ""),
                f.get("detail", ""),
            )
        )
    more = len(state.flags) - len(rows)
    note = f"<p>The first {len(rows)} of {len(state.flags)} flags.</p>" if more > 0 else ""
    return note + html_table(("seconds", "where", "level", "rule", "what"), rows)


def final_model_section(run: RunDir) -> str:
    """The run's final model (`dfu-tui fit`), verified against its manifest, and its card;
    or how to make one."""
    from dfu_tui.errors import InputError
    from dfu_tui.runs.model import CARD, verify

    folder = run.path / "model"
    if not (folder / "model.json").exists():
        return (
            "<p>No final model yet: <code>dfu-tui fit RUN</code> trains this run's "
            "combination on every patient into RUN/model, with its model card.</p>"
        )
    try:
        manifest = verify(folder)
    except InputError as exc:
        return f"<p><b>A model folder is here but does not verify:</b> {esc(exc)}</p>"
    card = (folder / CARD).read_text(encoding="utf-8", errors="replace")
    return (
        f"<p>{esc(folder)}: {esc('+'.join(manifest['combination']))}, every file matching its "
        "sha256 in model.json. Its card:</p>"
        f"<pre>{esc(card)}</pre>"
    )
