"""What a run may use of this machine: how many tasks run side by side, and which GPU each
image task gets.

GPUs are found without importing TensorFlow (`CUDA_VISIBLE_DEVICES`, then `nvidia-smi -L`).
Each image task is given one device through `CUDA_VISIBLE_DEVICES` (up to `tasks_per_gpu`
tasks share one, each with TensorFlow's memory growth on); metadata tasks see no GPU.
Everything here but `nvidia_smi_list` and `free_memory_bytes` is a pure function.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MEMORY_PER_TASK = 3e9  # bytes a CPU task needs (measured peak of a 64 px CNN task: ~2.4 GB)
MAX_CPU_JOBS = 4


def parse_visible_devices(value: str) -> list[str]:
    """`CUDA_VISIBLE_DEVICES` as a list of device ids ("" and "-1" hide every GPU)."""
    ids = [v.strip() for v in value.split(",") if v.strip()]
    out = []
    for v in ids:
        if v.startswith("-"):  # CUDA ignores this id and every one after it
            break
        out.append(v)
    return out


def parse_nvidia_smi(text: str) -> list[str]:
    """The device indices in `nvidia-smi -L` output (`GPU 0: NVIDIA H200 (UUID: ...)`)."""
    return re.findall(r"^GPU (\d+):", text, flags=re.MULTILINE)


def nvidia_smi_list() -> str | None:
    """`nvidia-smi -L`, or None where there is no driver (no GPU, or none usable)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def detect_gpus(
    environ: Mapping[str, str] | None = None,
    smi: Callable[[], str | None] = nvidia_smi_list,
) -> list[str]:
    """The GPU ids tasks may use: `CUDA_VISIBLE_DEVICES` when it is set, else every GPU
    `nvidia-smi -L` lists, else none."""
    env = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in env:
        return parse_visible_devices(env["CUDA_VISIBLE_DEVICES"])
    text = smi()
    return parse_nvidia_smi(text) if text else []


def free_memory_bytes() -> float | None:
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):
        return None


def jobs_for(cores: int, free_bytes: float | None, gpus: int = 0, tasks_per_gpu: int = 1) -> int:
    """Parallel tasks: one per core and about 3 GB of memory each; at most 4 without GPUs,
    and with GPUs the GPU slots plus one (a metadata task beside the image tasks)."""
    by_memory = max(1, int(free_bytes / MEMORY_PER_TASK)) if free_bytes else 1
    cap = gpus * tasks_per_gpu + 1 if gpus else MAX_CPU_JOBS
    return max(1, min(cores, by_memory, cap))


def default_jobs() -> int:
    """Parallel tasks this machine allows (see `jobs_for`).

    On a 2-core machine two single-threaded tasks beat one two-threaded task (measured in
    benchmarks/background.py: 37.9 s vs 48.6 s for configs/default.toml).
    """
    return jobs_for(os.cpu_count() or 1, free_memory_bytes(), len(detect_gpus()))


@dataclass
class GpuSlots:
    """Which GPU each running image task holds; at most `per_gpu` tasks a device."""

    gpus: list[str]
    per_gpu: int = 1
    held: dict[str, str] = field(default_factory=dict)  # task id -> GPU id

    def free(self) -> bool:
        return any(self._load(g) < self.per_gpu for g in self.gpus)

    def _load(self, gpu: str) -> int:
        return sum(1 for g in self.held.values() if g == gpu)

    def take(self, task: str) -> str:
        """The least loaded GPU with a free slot, now held by `task`."""
        gpu = min((g for g in self.gpus if self._load(g) < self.per_gpu), key=self._load)
        self.held[task] = gpu
        return gpu

    def give_back(self, task: str) -> None:
        self.held.pop(task, None)


def task_devices(is_image: bool, slots: GpuSlots, task: str) -> dict[str, str]:
    """The environment that places one task: its own GPU for an image task on a machine
    with GPUs, no GPU for a metadata task, and nothing changed on a machine without."""
    if not slots.gpus:
        return {}
    if not is_image:
        return {"CUDA_VISIBLE_DEVICES": ""}
    env = {"CUDA_VISIBLE_DEVICES": slots.take(task)}
    if slots.per_gpu > 1:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # tasks sharing a device grow into it
    return env


def can_start(is_image: bool, slots: GpuSlots) -> bool:
    """Whether a task may start now: an image task needs a free GPU slot where there are
    GPUs; a metadata task always may (within the run's jobs)."""
    return not (is_image and slots.gpus and not slots.free())
