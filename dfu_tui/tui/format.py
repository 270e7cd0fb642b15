"""Text pieces shared by the screens: durations, kappas, share bars, flags."""

from __future__ import annotations

from typing import Any

from textual.markup import escape

CLASSES = ("I", "P", "R")
BAR_WIDTH = 20


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def bar(share: float, width: int = BAR_WIDTH) -> str:
    full = round(max(0.0, min(1.0, share)) * width)
    return "█" * full + "·" * (width - full)


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
