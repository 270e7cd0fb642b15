"""The collapse rules calibrated on a table of cases: each case's intended verdict, each rule
able to fire alone, and epoch flags that respect the size of the inner split."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfu_tui.config import CollapseConfig
from dfu_tui.engine.metrics import kappa
from dfu_tui.engine.rules import (
    COLLAPSE,
    WARNING,
    Counts,
    EpochFlagger,
    alpha_pinned,
    check_predictions,
    nan_loss,
    overfit_gap,
    share_rules,
    wilson_lower,
)

CFG = CollapseConfig()
CFG3 = CollapseConfig(epoch_persist=3)  # epoch tests: flags after 3 epochs
TRUE = (30, 56, 14)  # I, P, R: the clinic's class shares (P about 56%, R about 14%)
SHARE_RULES = (
    "missing_class",
    "absolute_cap",
    "chance_concentration",
    "dominant_class",
    "low_entropy",
    "chance_kappa",
)


def level(flags: list) -> str | None:
    levels = {f.level for f in flags}
    return COLLAPSE if COLLAPSE in levels else WARNING if WARNING in levels else None


# (name, true counts, predicted counts, unweighted kappa, intended level, rules that fire)
CASES = [
    ("seed note's collapse", TRUE, (20, 68, 12), -0.02, COLLAPSE, {"chance_concentration"}),
    ("class never predicted", TRUE, (35, 65, 0), 0.20, COLLAPSE, {"missing_class"}),
    (
        "all one class",
        TRUE,
        (0, 100, 0),
        0.0,
        COLLAPSE,
        {"missing_class", "absolute_cap", "low_entropy"},
    ),
    ("nearly all one class", TRUE, (4, 92, 4), 0.10, COLLAPSE, {"absolute_cap"}),
    ("biased but useful", TRUE, (24, 40, 36), 0.27, WARNING, {"dominant_class"}),
    ("healthy", TRUE, (28, 58, 14), 0.45, None, set()),
    ("healthy, noisy shares", TRUE, (37, 48, 15), 0.30, None, set()),
    ("narrow at chance", (10, 45, 45), (1, 54, 45), 0.02, COLLAPSE, {"low_entropy"}),
    ("right shares, no skill", TRUE, (31, 55, 14), 0.01, WARNING, {"chance_kappa"}),
    ("rare class missed", (3, 60, 37), (0, 62, 38), 0.35, WARNING, {"missing_class"}),
]


@pytest.mark.parametrize(
    ("true", "pred", "k", "want", "rules"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_case_table(true, pred, k, want, rules) -> None:
    flags = share_rules(Counts(np.array(true), np.array(pred), k), CFG)
    assert level(flags) == want, flags
    assert {f.rule for f in flags} == rules, flags


def test_every_share_rule_is_alone_in_some_case() -> None:
    alone = {next(iter(c[5])) for c in CASES if len(c[5]) == 1}
    assert set(SHARE_RULES) <= alone


def test_seed_collapse_from_real_predictions() -> None:
    """The seed's failure built as label and prediction arrays: kappa near 0, P over-predicted."""
    y = np.array([0] * 30 + [1] * 56 + [2] * 14)
    shares = np.array([0] * 20 + [1] * 68 + [2] * 12)
    seeds = (np.random.default_rng(s).permutation(shares) for s in range(100))
    pred = next(p for p in seeds if -0.04 <= kappa(y, p) <= 0.0)
    k = kappa(y, pred)
    flags = check_predictions(y, pred, CFG, kappa=k, train_kappa=0.9)
    assert "chance_concentration" in {f.rule for f in flags}
    assert level(flags) == COLLAPSE
    assert any("unweighted kappa" in f.detail for f in flags)


def test_other_rules_fire_alone() -> None:
    assert [f.rule for f in overfit_gap(0.9, 0.3, CFG)] == ["overfit_gap"]
    assert [f.level for f in alpha_pinned(0.01, CFG)] == [WARNING]
    assert "image branches alone" in alpha_pinned(0.01, CFG)[0].detail
    assert "metadata alone" in alpha_pinned(0.99, CFG)[0].detail
    assert alpha_pinned(0.5, CFG) == []
    assert [f.rule for f in nan_loss(float("inf"))] == ["nan_loss"]


def _vectors(step: int) -> list[np.ndarray]:
    pairs = itertools.product(range(0, 101, step), repeat=2)
    return [np.array([a, b, 100 - a - b]) for a, b in pairs if a + b <= 100]


def _grid() -> list[tuple[np.ndarray, np.ndarray, float]]:
    trues = [v for v in _vectors(10) if (v >= 10).all()]
    return [(t, p, k) for t in trues for p in _vectors(5) for k in (-0.05, 0.02, 0.2, 0.5)]


def test_no_rule_is_dead_over_a_grid_of_shares() -> None:
    fired_alone: set[str] = set()
    for true, pred, k in _grid():
        flags = share_rules(Counts(true, pred, k), CFG)
        if len({f.rule for f in flags}) == 1:
            fired_alone.add(flags[0].rule)
    assert set(SHARE_RULES) - {"low_entropy"} <= fired_alone
    # low entropy without an over-predicted class needs finer shares than a 10% grid
    fine = Counts(np.array([10, 45, 45]), np.array([1, 54, 45]), 0.0)
    assert [f.rule for f in share_rules(fine, CFG)] == ["low_entropy"]


counts = st.lists(st.integers(0, 60), min_size=3, max_size=3).filter(lambda c: sum(c) > 0)


@settings(max_examples=300, deadline=None)
@given(true=counts, pred=counts, k=st.floats(-0.3, 0.9))
def test_more_agreement_never_raises_the_level(true, pred, k) -> None:
    """Raising kappa never makes a verdict worse; above chance, only a missing class or the
    absolute cap can collapse."""
    rank = {None: 0, WARNING: 1, COLLAPSE: 2}
    t, p = np.array(true), np.array(pred)
    low = share_rules(Counts(t, p, k), CFG)
    high = share_rules(Counts(t, p, k + 0.2), CFG)
    assert rank[level(high)] <= rank[level(low)]
    if k > CFG.chance_kappa:
        collapsing = {f.rule for f in low if f.level == COLLAPSE}
        assert collapsing <= {"missing_class", "absolute_cap"}


def test_wilson_lower_bound() -> None:
    assert wilson_lower(0, 0, 0.95) == 0.0
    assert wilson_lower(68, 100, 0.95) == pytest.approx(0.5833, abs=1e-3)
    assert wilson_lower(18, 50, 0.95) < 0.36 < wilson_lower(180, 500, 0.95) + 0.05


class TestEpochFlagger:
    y = np.array([0] * 15 + [1] * 28 + [2] * 7)  # an inner split of 50

    def collapsed(self) -> np.ndarray:
        return np.array([1] * 48 + [0, 2])

    def test_needs_persistence_and_fires_once(self) -> None:
        flagger = EpochFlagger(CFG3)
        raised = [flagger.step(self.y, self.collapsed(), 0.0, 0.5) for _ in range(5)]
        assert [len(r) > 0 for r in raised] == [False, False, True, False, False]
        assert level(raised[2]) == COLLAPSE
        assert "3 epochs running, n 50" in raised[2][0].detail
        assert all(flagger.raw)  # the rules held every epoch, raised once

    def test_a_stuck_model_that_swaps_its_class_is_one_collapse(self) -> None:
        """The planted collapse of the benchmark: all I, then all P, then R-heavy at chance."""
        one = [np.full(50, c) for c in (0, 1, 1, 2)] + [np.array([1] * 10 + [2] * 40)]
        flagger = EpochFlagger(CollapseConfig())  # the default: 5 epochs
        raised = [flagger.step(self.y, p, 0.0, 0.1) for p in one]
        assert [bool(r) for r in raised] == [False, False, False, False, True]
        assert {f.level for f in raised[-1]} == {COLLAPSE}

    def test_broken_streak_starts_over(self) -> None:
        flagger = EpochFlagger(CFG3)
        healthy = self.y.copy()
        seq = [self.collapsed()] * 2 + [healthy] + [self.collapsed()] * 3
        raised = [flagger.step(self.y, p, 0.0 if p is not healthy else 0.8, 0.8) for p in seq]
        assert [bool(r) for r in raised] == [False, False, False, False, False, True]

    def test_small_split_raises_no_share_flag(self) -> None:
        flagger = EpochFlagger(CFG3)
        y, pred = self.y[::2], self.collapsed()[::2]  # 25 < epoch_min_samples
        raised = [flagger.step(y, pred, 0.0, 0.1) for _ in range(5)]
        assert raised == [[], [], [], [], []]

    def test_noise_on_a_small_split_is_not_collapse(self) -> None:
        """The issue's example: R 0.36 of predictions, true 0.14, inner kappa 0.27."""
        y = np.array([0] * 15 + [1] * 28 + [2] * 7)
        pred = np.array([0] * 12 + [1] * 20 + [2] * 18)
        flagger = EpochFlagger(CFG3)
        raised = [f for _ in range(6) for f in flagger.step(y, pred, 0.27, 0.4)]
        assert all(f.level != COLLAPSE for f in raised)


def test_monitor_shows_flags_in_force_and_rules_still_waiting() -> None:
    """The epoch view lists a raised flag while its rule holds, and rules holding but not yet
    raised apart (the raw shares are shown every epoch either way)."""
    from dfu_tui.runs.state import RunState
    from dfu_tui.tui.panels.distribution import epoch_flags

    state = RunState("r")
    flagger = EpochFlagger(CFG3)
    y = TestEpochFlagger.y
    collapsed = TestEpochFlagger().collapsed()
    epochs = []
    for n, pred in enumerate([collapsed] * 4 + [y], 1):
        raised = flagger.step(y, pred, 0.0 if pred is collapsed else 0.9, 0.9)
        e: dict[str, Any] = {
            "kind": "epoch",
            "task": "fold1-thermal_map",
            "epoch": n,
            "rules_holding": [f.rule for f in flagger.raw[-1]],
            "flags": [f.to_dict() for f in raised],
        }
        state.apply(e)
        for f in raised:
            state.apply(
                {"kind": "flag", "scope": "epoch", "task": e["task"], "epoch": n, **f.to_dict()}
            )
        epochs.append(e)
    first, _ = epoch_flags(state, epochs[0])
    assert first == [] and set(epoch_flags(state, epochs[0])[1]) == set(epochs[0]["rules_holding"])
    third, waiting = epoch_flags(state, epochs[2])
    assert {f["rule"] for f in third} == set(epochs[2]["rules_holding"]) and waiting == []
    fourth, _ = epoch_flags(state, epochs[3])
    assert fourth  # still in force, though raised one epoch earlier
    assert epoch_flags(state, epochs[4]) == ([], [])  # healthy again: nothing in force


def test_every_rule_is_registered_once_with_its_paths_and_thresholds() -> None:
    """One table of rules: each flag name raised by one rule, each rule running on a named
    path, every `collapse.*` threshold read by some rule (or the epoch flagger), and each
    threshold a rule names is a real setting. The README names every flag."""
    import dataclasses

    from dfu_tui.config import CollapseConfig
    from dfu_tui.engine.rules import EPOCH, EPOCH_THRESHOLDS, FOLD, RULES, TRAINING
    from tests.helpers import ROOT

    names = [name for rule in RULES for name in rule.raises]
    assert len(names) == len(set(names))
    assert all(rule.paths and set(rule.paths) <= {FOLD, EPOCH, TRAINING} for rule in RULES)
    fields = {f.name for f in dataclasses.fields(CollapseConfig)}
    read = {t for rule in RULES for t in rule.thresholds} | set(EPOCH_THRESHOLDS)
    assert read == fields
    readme = (ROOT / "README.md").read_text()
    assert [n for n in names if f"`{n}`" not in readme] == []


def test_the_registry_runs_each_rule_on_its_own_path() -> None:
    """A fold sees `alpha_pinned`, an epoch never does; a training step sees `nan_loss` only;
    an epoch with too few samples runs no share rule but still the train/validation gap."""
    from dfu_tui.engine.rules import EPOCH, FOLD, TRAINING, Evidence, run_rules

    stuck = Counts(np.array([30, 40, 30]), np.array([0, 100, 0]), -0.01)
    evidence = Evidence(stuck, -0.01, train_kappa=0.9, mean_alpha=0.99, loss=float("nan"))
    fold = {f.rule for f in run_rules(FOLD, evidence, CFG)}
    epoch = {f.rule for f in run_rules(EPOCH, evidence, CFG)}
    assert {"alpha_pinned", "missing_class", "overfit_gap"} <= fold and "nan_loss" not in fold
    assert "alpha_pinned" not in epoch and "missing_class" in epoch
    assert {f.rule for f in run_rules(TRAINING, evidence, CFG)} == {"nan_loss"}
    small = Evidence(None, -0.01, train_kappa=0.9)
    assert {f.rule for f in run_rules(EPOCH, small, CFG)} == {"overfit_gap"}
