"""The order in which the supervisor starts tasks (`supervisor.next_task`)."""

from __future__ import annotations

from dfu_tui.runs.supervisor import next_task


def schedule(folds: int, jobs: int, seconds: dict[str, float]) -> tuple[list[str], float]:
    """Simulate a run: tasks of `seconds[branch]` each on `jobs` slots; (start order, end)."""
    pending = [f"fold{k}-{b}" for k in range(1, folds + 1) for b in ("metadata", "thermal_map")]
    running: dict[str, float] = {}  # task -> when it ends
    order, now = [], 0.0
    while pending or running:
        while pending and len(running) < jobs:
            task = next_task(pending, list(running), jobs, lambda t: True)
            pending.remove(task)
            order.append(task)
            running[task] = now + seconds[task.split("-")[1]]
        now = min(running.values())
        running = {t: end for t, end in running.items() if end > now}
    return order, now


COST = {"metadata": 3.0, "thermal_map": 20.0}


def test_one_job_keeps_fold_order_each_folds_cnn_first() -> None:
    order, _ = schedule(3, 1, COST)
    assert order == [f"fold{k}-{b}" for k in (1, 2, 3) for b in ("thermal_map", "metadata")]


def test_two_jobs_start_the_long_tasks_early_and_keep_both_slots_busy() -> None:
    order, end = schedule(3, 2, COST)
    assert order[:2] == ["fold1-thermal_map", "fold2-thermal_map"]
    # fold order with a CNN alone at the end (the order before): 3 + 20 + ... = 46 s
    fold_order = 3 + 20 + 20 + 3  # m1 | t1; m2, then t2 ... the last CNN alone
    assert end < fold_order and end == 20 + 20  # two CNNs, then the third beside the forests
    # the folds still finish one after another: each fold's forest in fold order
    forests = [t for t in order if t.endswith("metadata")]
    assert forests == ["fold1-metadata", "fold2-metadata", "fold3-metadata"]


def test_many_folds_still_finish_one_after_another() -> None:
    """With ten folds the CNNs run at most two folds ahead: the first fold's score comes in
    the first quarter of the run, not at the end (as the long-tasks-first order would give)."""
    order, end = schedule(10, 2, COST)
    ends = finish_times(order, 2, COST)
    fold_end = {k: max(ends[f"fold{k}-{b}"] for b in COST) for k in range(1, 11)}
    assert fold_end[1] <= end / 4
    assert all(fold_end[k] <= fold_end[k + 2] for k in range(1, 9))
    assert end <= 10 * (20 + 3) / 2 + 20  # both slots busy but for the last CNN


def finish_times(order: list[str], jobs: int, seconds: dict[str, float]) -> dict[str, float]:
    """When each task of a start order ends on `jobs` slots (each starts on the first free)."""
    slots = [0.0] * jobs
    ends = {}
    for task in order:
        k = slots.index(min(slots))
        slots[k] += seconds[task.split("-")[1]]
        ends[task] = slots[k]
    return ends


def test_nothing_when_no_task_may_start() -> None:
    assert next_task(["fold1-thermal_map"], [], 2, lambda t: False) == ""
