"""The leakage radar: which metadata features carry a fold's kappa.

Two views, each computed on stated data only:
- permutation importance on the validation fold: the drop in unweighted kappa of the fitted
  metadata pipeline when one column's values are shuffled (scikit-learn's
  `permutation_importance` scheme, with every permuted copy scored in one batched predict);
- single-feature kappa on the training fold: the patient-grouped cross-validated kappa of a
  small tree that sees that column alone.

Columns that stand far above the rest are flagged `dominant_feature`; columns of the
`treatment` group (decided after the wound is assessed) are flagged whenever they rank high.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight

from dfu_tui.config import RadarConfig
from dfu_tui.data.schema import FEATURE_GROUPS
from dfu_tui.engine.curve import cohen_kappa
from dfu_tui.engine.folds import inner_folds
from dfu_tui.engine.rules import WARNING, Flag

TREATMENT_NOTE = "decided after assessment: may encode the label"


def kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted Cohen's kappa over the three classes (0 when undefined); NumPy only."""
    return cohen_kappa(np.asarray(y_true), np.asarray(y_pred))


@dataclass(frozen=True)
class Importances:
    """Permutation importances: mean and sd over repeats, per column, in column order."""

    columns: list[str]
    mean: np.ndarray
    std: np.ndarray
    baseline: float


# predict(stacked rows, n base rows, the matrix columns each block permuted) -> classes
BatchPredict = Callable[[np.ndarray, int, list[np.ndarray]], np.ndarray]


def permutation_importances(
    predict: BatchPredict,
    matrix: np.ndarray,
    labels: np.ndarray,
    n_repeats: int,
    random_state: int,
    columns: list[str],
    groups: list[np.ndarray] | None = None,
    score: Callable[[np.ndarray, np.ndarray], float] = kappa,
) -> Importances:
    """scikit-learn's `permutation_importance` with every permuted copy predicted at once.

    `matrix` holds the rows to score; feature `i` (named `columns[i]`) is the matrix columns
    `groups[i]` (default: column i alone), all shuffled together. The permutations are
    exactly scikit-learn's (one seed drawn from `random_state`, each feature shuffled
    cumulatively `n_repeats` times from that seed), so on raw columns the result equals
    `sklearn.inspection.permutation_importance(..., random_state=random_state)`.
    `predict` gets the base rows and every permuted copy stacked, and which columns each
    copy permuted.
    """
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    n = len(matrix)
    groups = groups if groups is not None else [np.array([j]) for j in range(len(columns))]
    blocks = [matrix]
    permuted: list[np.ndarray] = []
    for index in groups:
        rng = check_random_state(seed)
        shuffling = np.arange(n)
        values = matrix[:, index]
        for _ in range(n_repeats):
            rng.shuffle(shuffling)
            values = values[shuffling]
            block = matrix.copy()
            block[:, index] = values
            blocks.append(block)
            permuted.append(index)
    predicted = predict(np.concatenate(blocks), n, permuted)
    baseline = score(labels, predicted[:n])
    scores = np.array(
        [score(labels, predicted[(i + 1) * n : (i + 2) * n]) for i in range(len(blocks) - 1)]
    ).reshape(len(columns), n_repeats)
    drops = baseline - scores
    return Importances(list(columns), drops.mean(axis=1), drops.std(axis=1), baseline)


def plain_predict(predict: Callable[[np.ndarray], np.ndarray]) -> BatchPredict:
    """A BatchPredict that predicts every stacked row."""
    return lambda stacked, n, permuted: predict(stacked)


def forest_predict(forest: Any, threads: int = 1) -> BatchPredict:
    """A BatchPredict for a fitted scikit-learn `RandomForestClassifier` that predicts each
    permuted row only through the trees whose path for it can change.

    A tree's path for a row changes only at a node that splits on a permuted column, so a row
    whose path (on the base rows) meets no such node keeps that tree's base prediction; only
    the other (block, row, tree) triples go through the tree again (on the demo, about an
    eighth of them). The trees' probabilities are summed in tree order, as the forest's
    one-thread `predict_proba` sums them: the classes are exactly that predict's, whatever
    `threads` (threads only share the trees' work, the sum stays in order).
    """
    from concurrent.futures import ThreadPoolExecutor

    trees = forest.estimators_

    def predict(stacked: np.ndarray, n: int, permuted: list[np.ndarray]) -> np.ndarray:
        rows = np.ascontiguousarray(stacked, dtype=np.float32)  # as the trees read them
        base = rows[:n]
        # each block's permuted column set, as a group number; a node's group likewise
        keys = {tuple(index.tolist()) for index in permuted}
        number = {key: g for g, key in enumerate(sorted(keys))}
        block_group = np.array([number[tuple(index.tolist())] for index in permuted])
        column_group = np.full(rows.shape[1], len(number))  # not permuted: its own group
        for key, g in number.items():
            column_group[list(key)] = g

        def changes(tree: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            """(base proba, block, row, proba) of the rows whose path meets a permuted
            column's split in `tree` (its low-level `apply` and leaf values: exactly what
            its `predict_proba` returns)."""
            inner = tree.tree_
            values = inner.value[:, 0, : len(forest.classes_)]
            leaf = inner.apply(base)
            block, row = np.nonzero(path_groups(inner)[leaf][:, block_group].T)
            again = inner.apply(rows[(block + 1) * n + row]) if len(row) else leaf[:0]
            return values[leaf], block, row, values[again]

        def path_groups(inner: Any) -> np.ndarray:
            """Per node, the groups split on between the root and it (walked level by
            level from the root)."""
            count = inner.node_count
            left, right, feature = inner.children_left, inner.children_right, inner.feature
            own = np.zeros((count, len(number) + 1), dtype=bool)
            split = feature >= 0
            own[np.flatnonzero(split), column_group[feature[split]]] = True
            seen = np.zeros_like(own)
            level = np.array([0])
            while len(level):
                level = level[split[level]]
                for child in (left[level], right[level]):
                    seen[child] = seen[level] | own[level]
                level = np.concatenate([left[level], right[level]])
            return seen

        total = np.zeros((len(permuted) + 1, n, len(forest.classes_)))
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for start in range(0, len(trees), 16):  # a few trees' results held at a time
                for base_proba, block, row, proba in pool.map(changes, trees[start : start + 16]):
                    # each sum gets exactly one addend per tree: the base prediction, or
                    # for a changed row its own (its sum so far kept aside, then added to)
                    before = total[block + 1, row]
                    total += base_proba
                    total[block + 1, row] = before + proba
        total /= len(trees)
        return np.asarray(forest.classes_)[total.reshape(-1, total.shape[-1]).argmax(axis=1)]

    return predict


def output_groups(transformer: Any, numeric: list[str], text: list[str]) -> dict[str, np.ndarray]:
    """Per input column, the output columns of the fitted metadata ColumnTransformer.

    The transformer works column by column (median imputation with missing indicators,
    one-hot encoding), so shuffling an input column is shuffling its output columns: the
    radar transforms the validation fold once and permutes the outputs.
    """
    out: dict[str, list[int]] = {c: [] for c in [*numeric, *text]}
    slices = transformer.output_indices_
    start = slices["numeric"].start
    for i, c in enumerate(numeric):
        out[c].append(start + i)
    imputer = transformer.named_transformers_["numeric"]
    if getattr(imputer, "indicator_", None) is not None:
        for k, feature in enumerate(imputer.indicator_.features_):
            out[numeric[feature]].append(start + len(numeric) + k)
    if text:
        position = slices["text"].start
        encoder = transformer.named_transformers_["text"][-1]
        for c, categories in zip(text, encoder.categories_, strict=True):
            out[c].extend(range(position, position + len(categories)))
            position += len(categories)
    return {c: np.array(v, dtype=np.int64) for c, v in out.items()}


def radar_inputs(model: Any, frame: Any, rows: np.ndarray) -> tuple[Any, np.ndarray, list[Any]]:
    """What the radar permutes, from the fitted metadata pipeline: its forest, the `rows` of
    `frame` through its column transformer, and per column of `frame` (in order) the
    transformed columns that are that column."""
    columns_step, forest = model.named_steps["columns"], model.named_steps["forest"]
    numeric = [c for c in frame.columns if c in columns_step.transformers_[0][2]]
    text = [c for c in frame.columns if c in columns_step.transformers_[1][2]]
    mapping = output_groups(columns_step, numeric, text)
    matrix = np.asarray(columns_step.transform(frame.iloc[rows]), dtype=float)
    return forest, matrix, [mapping[c] for c in frame.columns]


def encode_columns(frame: pd.DataFrame, fit_rows: np.ndarray) -> np.ndarray:
    """Each column as one number per row, learned from `fit_rows` only.

    Numbers stay as they are (missing stays NaN, which trees route on their own); a text
    column becomes the code of its value among the values seen in `fit_rows` (NaN when
    missing or unseen).
    """
    out = np.empty((len(frame), frame.shape[1]))
    for j, column in enumerate(frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            out[:, j] = values.to_numpy(dtype=float)
            continue
        seen = sorted(set(values.iloc[fit_rows].dropna().astype(str)))
        codes = {v: float(i) for i, v in enumerate(seen)}
        out[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in values]
    return out


def single_feature_kappas(
    frame: pd.DataFrame,
    labels: np.ndarray,
    groups: np.ndarray,
    n_folds: int,
    seed: int,
) -> dict[str, float]:
    """Per column: the patient-grouped cross-validated kappa of a small tree on it alone.

    Every row of `frame` is used (pass the training fold); the folds are patient-grouped
    inside it, and each column's encoding is learned on the inner training rows only.
    """
    from sklearn import config_context

    splits = inner_folds(labels, groups, n_folds, seed)
    predicted = np.zeros((frame.shape[1], len(labels)), dtype=np.int64)
    # the trees' settings are ours and valid: scikit-learn's check of them on each of the
    # columns x folds fits was a quarter of this function's time
    with config_context(skip_parameter_validation=True):
        _single_feature_folds(frame, labels, splits, seed, predicted)
    return {c: kappa(labels, predicted[j]) for j, c in enumerate(frame.columns)}


def _single_feature_folds(
    frame: pd.DataFrame,
    labels: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    predicted: np.ndarray,
) -> None:
    """`single_feature_kappas`' trees, fold by fold: their predictions into `predicted`."""
    for train, val in splits:
        encoded = encode_columns(frame, train)
        # Balanced class weights, computed once per inner fold rather than per column.
        weights = compute_sample_weight("balanced", labels[train])
        for j in range(frame.shape[1]):
            tree = DecisionTreeClassifier(
                max_depth=3, min_samples_leaf=max(5, len(train) // 50), random_state=seed
            )
            tree.fit(encoded[train, j : j + 1], labels[train], sample_weight=weights)
            predicted[j, val] = tree.classes_[tree.predict_proba(encoded[val, j : j + 1]).argmax(1)]


def rank(values: dict[str, float]) -> list[str]:
    """Columns by value, highest first (ties by name, so the order is stable)."""
    return sorted(values, key=lambda c: (-values[c], c))


def radar_table(importances: Importances | None, single: dict[str, float]) -> list[dict[str, Any]]:
    """One row per column: importance (mean, sd), single-feature kappa and both ranks."""
    imp = (
        {c: float(m) for c, m in zip(importances.columns, importances.mean, strict=True)}
        if importances is not None
        else {}
    )
    sd = (
        {c: float(s) for c, s in zip(importances.columns, importances.std, strict=True)}
        if importances is not None
        else {}
    )
    imp_rank = {c: i + 1 for i, c in enumerate(rank(imp))}
    single_rank = {c: i + 1 for i, c in enumerate(rank(single))}
    rows = [
        {
            "feature": c,
            "importance": imp.get(c),
            "importance_sd": sd.get(c),
            "importance_rank": imp_rank.get(c),
            "single_kappa": single.get(c),
            "single_rank": single_rank.get(c),
            "groups": [g for g, cols in FEATURE_GROUPS.items() if c in cols],
        }
        for c in (rank(imp) if imp else rank(single))
    ]
    return rows


def _dominant(
    values: dict[str, float], floor: float, ratio: float
) -> tuple[str, float, str, float] | None:
    """The top column when it is above `floor` and `ratio` times the runner-up."""
    order = rank(values)
    if len(order) < 2:
        return None
    top, second = order[0], order[1]
    v1, v2 = values[top], max(values[second], 0.0)
    if v1 >= floor and v1 >= ratio * v2:
        return top, v1, second, v2
    return None


def radar_flags(
    rows: list[dict[str, Any]], cfg: RadarConfig, n_val: int = 0, n_train: int = 0
) -> list[Flag]:
    """`dominant_feature` and `treatment_feature` flags of one fold's radar table (`n_val`
    and `n_train`: the samples each measure was computed on, named in the details)."""
    on_val = f"validation fold, n={n_val}" if n_val else "validation fold"
    on_train = f"training fold, n={n_train}" if n_train else "training fold"
    flags = []
    imp = {r["feature"]: r["importance"] for r in rows if r["importance"] is not None}
    sd = {r["feature"]: r["importance_sd"] or 0.0 for r in rows}
    single = {r["feature"]: r["single_kappa"] for r in rows if r["single_kappa"] is not None}
    hit = _dominant(imp, cfg.min_importance, cfg.dominance_ratio)
    if hit is not None and hit[1] - 2 * sd[hit[0]] > 0:
        top, v1, second, v2 = hit
        flags.append(
            Flag(
                "dominant_feature",
                WARNING,
                f"{top}: permutation importance {v1:.3f} ± {sd[top]:.3f} unweighted kappa "
                f"({on_val}), {v1 / max(v2, 1e-9):.1f}x the next ({second} {v2:.3f})"
                if v2 > 0
                else f"{top}: permutation importance {v1:.3f} ± {sd[top]:.3f} unweighted "
                f"kappa ({on_val}); no other column above 0",
            )
        )
    hit = _dominant(single, cfg.min_single_kappa, cfg.dominance_ratio)
    if hit is not None:
        top, v1, second, v2 = hit
        flags.append(
            Flag(
                "dominant_feature",
                WARNING,
                f"{top}: single-feature unweighted kappa {v1:.3f} ({on_train}, "
                "patient-grouped CV), "
                f"{v1 / max(v2, 1e-9):.1f}x the next ({second} {v2:.3f})",
            )
        )
    treatment = FEATURE_GROUPS["treatment"]
    for r in rows:
        if r["feature"] not in treatment:
            continue
        reasons = []
        clear = (r["importance"] or 0.0) - 2 * (r["importance_sd"] or 0.0) > 0  # not noise
        if r["importance_rank"] is not None and r["importance_rank"] <= cfg.top and clear:
            reasons.append(f"importance rank {r['importance_rank']} ({r['importance']:.3f})")
        if (
            r["single_rank"] is not None
            and r["single_rank"] <= cfg.top
            and (r["single_kappa"] or 0) > 0
        ):
            reasons.append(f"single-feature rank {r['single_rank']} ({r['single_kappa']:.3f})")
        if reasons:
            flags.append(
                Flag(
                    "treatment_feature",
                    WARNING,
                    f"{r['feature']}: {TREATMENT_NOTE}; {', '.join(reasons)}",
                )
            )
    return flags
