"""A run's plan: its branches, outer folds and (fold, branch) tasks, from the config alone.

No NumPy, no scikit-learn: the launch form's preview counts with the same functions the
supervisor schedules with (the folds themselves are made by `folds.run_folds`)."""

from __future__ import annotations

from dataclasses import dataclass

from dfu_tui.config import FUSIONS, Config
from dfu_tui.data.schema import METADATA, MODALITIES, without_branch
from dfu_tui.engine.records import CASEMIX_FOLDS


@dataclass(frozen=True)
class Task:
    """One unit of training: a branch on a fold."""

    fold: int
    branch: str


def comparison_branch(cfg: Config) -> str | None:
    """The metadata branch without `features.compare`'s group, when one is asked for."""
    return without_branch(cfg.features.compare) if cfg.features.compare else None


def branches_of(cfg: Config) -> list[str]:
    """Every branch any combination needs, in canonical order, then the comparison branch."""
    needed = {m for combo in cfg.combinations for m in combo}
    out = [m for m in MODALITIES if m in needed]
    extra = comparison_branch(cfg)
    return [*out, extra] if extra and METADATA in out else out


def total_folds(cfg: Config) -> int:
    """Outer folds of a run: folds x repeats, plus the temporal hold-out and its case-mix
    folds when asked for."""
    extra = 1 + CASEMIX_FOLDS if cfg.cv.strategy == "temporal" else 0
    return cfg.cv.folds * cfg.cv.repeats + extra


def plan_tasks(cfg: Config) -> list[Task]:
    """All (fold, branch) tasks of a run, fold by fold (repeat by repeat)."""
    return [Task(k, b) for k in range(1, total_folds(cfg) + 1) for b in branches_of(cfg)]


def needs_oof(cfg: Config) -> bool:
    """Whether a fusion the run scores is fitted on inner out-of-fold probabilities (then
    every branch task computes them)."""
    return any(FUSIONS[v.strategy].needs_oof for v in cfg.fusion_variants())
