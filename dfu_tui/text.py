"""Words for numbers, written once: `1 fold`, `3 folds` (never `fold(s)`)."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and the word in the number it takes: `plural(1, "fold")` is `1 fold`."""
    return f"{n} {word if n == 1 else many or word + 's'}"
