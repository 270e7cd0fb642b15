"""The error type for bad input: one line per problem, shown without a traceback, exit 2."""

from __future__ import annotations

from collections.abc import Iterable

#: At most this many problems are listed; the rest are counted ("and 49 990 more").
MAX_PROBLEMS = 20


class InputError(Exception):
    """Bad input (config, dataset, command line). Each problem is one line naming its source;
    a long list is capped at `MAX_PROBLEMS` lines and a count of the rest."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        lines = [problems] if isinstance(problems, str) else list(problems)
        if len(lines) > MAX_PROBLEMS:
            rest = len(lines) - MAX_PROBLEMS
            lines = [*lines[:MAX_PROBLEMS], f"... and {rest:,} more problem(s) like these"]
        self.problems: list[str] = lines
        super().__init__("\n".join(self.problems))
