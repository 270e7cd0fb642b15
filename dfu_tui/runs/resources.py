"""What a run may use of this machine: how many tasks run side by side."""

from __future__ import annotations

import os


def default_jobs() -> int:
    """Parallel tasks the machine allows: one per core, about 3 GB of memory each, at most 4.

    On a 2-core machine two single-threaded tasks beat one two-threaded task (measured in
    benchmarks/background.py: 37.9 s vs 48.6 s for configs/default.toml).
    """
    cores = os.cpu_count() or 1
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        by_memory = max(1, int(pages / 3e9))
    except (ValueError, OSError):
        by_memory = 1
    return max(1, min(cores, by_memory, 4))
