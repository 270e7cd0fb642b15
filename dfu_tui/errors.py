"""The error type for bad input: one line per problem, shown without a traceback, exit 2."""

from __future__ import annotations

from collections.abc import Iterable


class InputError(Exception):
    """Bad input (config, dataset, command line). Each problem is one line naming its source."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
