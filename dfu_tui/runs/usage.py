"""What a task used of the machine, measured inside its own process: CPU (% of one core, so
200 % is two cores busy), peak memory, and a GPU's peak memory where TensorFlow placed the
task on one. Works the same in a local worker and in a Ray task; read by the monitor (a slow
epoch next to a busy core explains itself) and the report."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from typing import Any


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory since `reset_peak_rss` (else since it started),
    in MB (Linux reports KB)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> None:
    """Start this process's peak memory over from what it holds now (Linux: `5` into
    `/proc/self/clear_refs`), so that a worker that trains task after task reports each
    task's own peak; elsewhere the peak stays the process's."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def gpu_peak_mb() -> float | None:
    """The peak memory TensorFlow allocated on its GPUs, in MB; None when TensorFlow is not
    loaded in this process or placed nothing on a GPU (never imports it)."""
    tf: Any = sys.modules.get("tensorflow")
    if tf is None:
        return None
    try:
        devices = tf.config.list_logical_devices("GPU")
        peaks = [tf.config.experimental.get_memory_info(d.name)["peak"] for d in devices]
    except (AttributeError, RuntimeError, ValueError):
        return None
    return round(sum(peaks) / 2**20, 1) if peaks else None


@dataclass
class Usage:
    """A stopwatch of wall and CPU time: `lap()` since the previous lap (an epoch), `total()`
    since the start (the task)."""

    wall: float
    cpu: float
    lap_wall: float
    lap_cpu: float

    @classmethod
    def start(cls) -> Usage:
        reset_peak_rss()
        wall, cpu = time.perf_counter(), _cpu_seconds()
        return cls(wall, cpu, wall, cpu)

    @staticmethod
    def _percent(cpu: float, wall: float) -> float:
        return round(100 * cpu / wall, 1) if wall > 0 else 0.0

    def lap(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        out = {
            "cpu_percent": self._percent(cpu - self.lap_cpu, wall - self.lap_wall),
            "peak_rss_mb": peak_rss_mb(),
        }
        self.lap_wall, self.lap_cpu = wall, cpu
        return out

    def total(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        out = {
            "cpu_percent": self._percent(cpu - self.cpu, wall - self.wall),
            "peak_rss_mb": peak_rss_mb(),
        }
        gpu = gpu_peak_mb()
        if gpu is not None:
            out["gpu_peak_mb"] = gpu
        return out
