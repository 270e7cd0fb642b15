"""Text pieces shared by the screens: durations, kappas, share bars, flags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.markup import escape

from dfu_tui.runs.describe import Line
from dfu_tui.text import plural

CLASSES = ("I", "P", "R")
BAR_WIDTH = 20


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def breakable(path: object) -> str:
    """A path that wraps at its `/` (a zero-width space after each), not mid-name, in a
    toast or a narrow panel."""
    return str(path).replace("/", "/\u200b")


def eta_text(state: Any, now: float) -> str:
    """`3:10–4:40` while a run goes, `estimating` until there is evidence, `-` otherwise."""
    if state.effective_status(now) != "running":
        return "-"
    span = state.eta_range(now)
    if span is None:
        return "estimating"
    low, high = duration(span[0]), duration(span[1])
    return low if low == high else f"{low}–{high}"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def bar(share: float, width: int = BAR_WIDTH) -> str:
    full = round(max(0.0, min(1.0, share)) * width)
    return "█" * full + "·" * (width - full)


def line_markup(line: Line) -> str:
    """A line about an event (`runs.describe`) in the theme's colours: its head bold."""
    colour = f"${line.tone}" if line.tone else ""
    if line.head:
        head = f"[bold {colour}]{escape(line.head)}[/]" if colour else escape(line.head)
        return f"{escape(line.where)}{head}: {escape(line.text)}"
    text = escape(line.where + line.text)
    return f"[{colour}]{text}[/]" if colour else text


def flag_markup(flag: dict[str, Any]) -> str:
    """`COLLAPSE dominant_class: P 0.68 of predictions, true 0.56`, in the theme's colour."""
    colour = "$error" if flag["level"] == "collapse" else "$warning"
    head = f"{flag['level'].upper()} {escape(flag['rule'])}"
    return f"[bold {colour}]{head}[/]: {escape(flag['detail'])}"


def distribution(predicted: dict[str, float], true: dict[str, float]) -> str:
    """Predicted vs. true share per class, as bars (markup)."""
    lines = []
    for c in CLASSES:
        p, t = predicted.get(c, 0.0), true.get(c, 0.0)
        lines.append(f"{c} predicted [$accent]{bar(p)}[/] {p:4.2f}")
        lines.append(f"  true      [$text-muted]{bar(t)}[/] {t:4.2f}")
    return "\n".join(lines)


def for_rich(markup: str) -> str:
    """Textual markup with theme variables, as Rich markup (for RichLog)."""
    for var, colour in (
        ("$error", "red"),
        ("$warning", "yellow"),
        ("$success", "green"),
        ("$accent", "cyan"),
        ("$text-muted", "dim"),
    ):
        markup = markup.replace(var, colour)
    return markup


def radar_lines(radar: Mapping[str, Any] | None, top: int = 5) -> str:
    """A fold's top features by permutation importance, with single-feature kappa (markup)."""
    if not radar:
        return "[$text-muted]no feature radar in this fold[/]"
    n_val, n_train = radar.get("n_validation"), radar.get("n_training")
    lines = [
        f"unweighted kappa {radar['baseline_kappa']:.3f} on {n_val or '?'} validation samples; "
        f"per feature: kappa drop when shuffled (mean ± sd of {radar.get('repeats', '?')}) | "
        f"kappa alone (patient-grouped CV on {n_train or '?'} training samples)"
    ]
    for r in radar["features"][:top]:
        groups = f" [$warning]{', '.join(r['groups'])}[/]" if "treatment" in r["groups"] else ""
        imp = "-" if r["importance"] is None else f"{r['importance']:+.3f}"
        sd = "" if r["importance_sd"] is None else f" ± {r['importance_sd']:.3f}"
        lines.append(
            f"{r['importance_rank']}. {escape(r['feature'])}{groups}  {imp}{sd} | "
            f"{num(r['single_kappa'])}"
        )
    return "\n".join(lines)


def comparison_lines(
    folds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any] | None = None
) -> str | None:
    """The paired with/without-group comparison, fold by fold (markup), or None."""
    per = [f for f in sorted(folds, key=lambda f: f["fold"]) if "feature_comparison" in f]
    if not per:
        return None
    group = per[0]["feature_comparison"]["group"]
    n = sum(f["feature_comparison"]["n"] for f in per)
    lines = [
        f"kappa (unweighted) with | without {group}, paired on the same {n} validation "
        f"samples of {plural(len(per), 'fold')}"
    ]
    for i, row in enumerate(per[0]["feature_comparison"]["rows"]):
        name = "+".join(row["modalities"])
        diffs = []
        cells = []
        for f in per:
            r = f["feature_comparison"]["rows"][i]
            a, b = r["with"]["kappa"], r["without"]["kappa"]
            diffs.append(a - b)
            cells.append(f"f{f['fold']} {a:.3f}|{b:.3f}")
        mean = sum(diffs) / len(diffs)
        text = f"{escape(name)}: {'  '.join(cells)}  diff {mean:+.3f}"
        final = (summary or {}).get("rows", [])
        if i < len(final) and final[i]["kappa"]["folds"] > 1:
            k = final[i]["kappa"]
            low, high = k["ci95"]
            corrected = "corrected " if k.get("correction") == "nadeau-bengio" else ""
            text += f" ± {k['sd_difference']:.3f} sd, {corrected}95% CI [{low:+.3f}, {high:+.3f}]"
            text += "" if k["distinguishable"] else " (not distinguishable from 0)"
        elif len(diffs) > 1:
            sd = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5
            text += f" ± {sd:.3f} sd over {len(diffs)} folds"
        lines.append(text)
    return "\n".join(lines)
