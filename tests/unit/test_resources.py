"""GPU detection and placement (pure functions: no GPU needed), and the jobs default."""

from __future__ import annotations

from dfu_tui.runs.resources import (
    GpuSlots,
    can_start,
    detect_gpus,
    jobs_for,
    parse_nvidia_smi,
    parse_visible_devices,
    task_devices,
)

SMI = """GPU 0: NVIDIA H200 (UUID: GPU-1c0e4f0a-0000-0000-0000-000000000000)
GPU 1: NVIDIA H200 (UUID: GPU-2d1f5a1b-0000-0000-0000-000000000000)
"""


def test_visible_devices_win_over_nvidia_smi() -> None:
    never = lambda: SMI  # noqa: E731
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, never) == ["2", "3"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}, never) == []
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, never) == []
    assert detect_gpus({}, never) == ["0", "1"]
    assert detect_gpus({}, lambda: None) == []  # no driver: no GPU, no error


def test_parsing() -> None:
    assert parse_visible_devices("0, 1,,GPU-abc") == ["0", "1", "GPU-abc"]
    assert parse_visible_devices("1,-1,2") == ["1"]  # CUDA stops at an invalid id
    assert parse_nvidia_smi(SMI) == ["0", "1"]
    assert parse_nvidia_smi("No devices were found\n") == []


def test_each_image_task_gets_its_own_gpu_and_metadata_none() -> None:
    slots = GpuSlots(["0", "1"])
    assert task_devices(False, slots, "fold1-metadata") == {"CUDA_VISIBLE_DEVICES": ""}
    a = task_devices(True, slots, "fold1-thermal_map")
    b = task_devices(True, slots, "fold1-depth_map")
    assert {a["CUDA_VISIBLE_DEVICES"], b["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
    assert not can_start(True, slots) and can_start(False, slots)  # both GPUs busy
    slots.give_back("fold1-thermal_map")
    assert can_start(True, slots)
    c = task_devices(True, slots, "fold2-thermal_map")
    assert c["CUDA_VISIBLE_DEVICES"] == a["CUDA_VISIBLE_DEVICES"]  # the one given back


def test_tasks_share_a_gpu_with_memory_growth() -> None:
    slots = GpuSlots(["0"], per_gpu=2)
    first = task_devices(True, slots, "fold1-thermal_map")
    second = task_devices(True, slots, "fold1-depth_rgb")
    assert first == second == {"CUDA_VISIBLE_DEVICES": "0", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert not can_start(True, slots)


def test_no_gpu_changes_nothing() -> None:
    slots = GpuSlots([])
    assert task_devices(True, slots, "fold1-thermal_map") == {}
    assert can_start(True, slots)


def test_jobs_default() -> None:
    assert jobs_for(2, 24e9) == 2  # this machine: one task per core
    assert jobs_for(16, 128e9) == 4  # no GPU: at most four CPU tasks
    assert jobs_for(16, 128e9, gpus=1) == 2  # one image task on the GPU, one metadata task
    assert jobs_for(16, 128e9, gpus=2, tasks_per_gpu=2) == 5
    assert jobs_for(16, 4e9, gpus=2) == 1  # memory still bounds it
    assert jobs_for(1, None) == 1


def test_what_a_ray_task_asks_for() -> None:
    """Ray schedules by what a task asks: a metadata task never asks for a GPU, an image
    task asks for its share only where the cluster has GPUs (it would wait for ever
    otherwise), and memory is reserved only when configured."""
    from dfu_tui.config import ExecutorConfig
    from dfu_tui.runs.ray_executor import task_options

    ex = ExecutorConfig(kind="ray", cpus_per_task=2.0, gpus_per_task=0.5, memory_gb=2.5)
    assert task_options(ex, "metadata", cluster_gpus=True) == {
        "num_cpus": 2.0,
        "num_gpus": 0,
        "memory": 2_500_000_000,
    }
    assert task_options(ex, "metadata_without_timing", cluster_gpus=True)["num_gpus"] == 0
    assert task_options(ex, "thermal_map", cluster_gpus=True)["num_gpus"] == 0.5
    assert task_options(ex, "depth_rgb", cluster_gpus=False)["num_gpus"] == 0
    plain = ExecutorConfig(kind="ray")
    assert "memory" not in task_options(plain, "depth_map", cluster_gpus=False)


def test_a_task_measures_what_its_process_used() -> None:
    """CPU as % of one core over a lap and over the whole task (a busy loop is near 100 %,
    a sleep near 0), the process's peak memory, and no GPU figure without TensorFlow; the
    state keeps it per task, the log line and the report's table say it."""
    import time

    from dfu_tui.report.sections import resources_table
    from dfu_tui.runs.describe import describe
    from dfu_tui.runs.state import RunState
    from dfu_tui.runs.usage import Usage

    usage = Usage.start()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        pass
    busy = usage.lap()
    time.sleep(0.3)
    idle = usage.lap()
    total = usage.total()
    # (a shared machine gives a busy loop less than a core: compared, not absolute)
    assert busy["cpu_percent"] > 25 and busy["cpu_percent"] > 3 * idle["cpu_percent"]
    assert idle["cpu_percent"] < total["cpu_percent"] < busy["cpu_percent"]
    assert total["peak_rss_mb"] > 10 and "gpu_peak_mb" not in total
    state = RunState("r")
    state.apply({"kind": "task_started", "ts": 0.0, "task": "fold1-metadata"})
    finished = {"kind": "branch_finished", "ts": 1.0, "task": "fold1-metadata", "seconds": 0.6}
    state.apply({**finished, **total})
    assert state.usage["fold1-metadata"]["cpu_percent"] == total["cpu_percent"]
    (line,) = describe({**finished, **total, "v": 1})
    assert f"CPU {total['cpu_percent']:.0f}% of a core" in line.text and "peak" in line.text
    table = resources_table(state)
    assert "fold1-metadata" in table and f"{total['cpu_percent']:.0f}" in table
    old = RunState("r")  # a log from before the measure: said, not invented
    old.apply({"kind": "task_started", "ts": 0.0, "task": "fold1-metadata"})
    old.apply(finished)
    assert "<td>-</td>" in resources_table(old)
