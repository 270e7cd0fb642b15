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

#: Trees the radar takes together (one array pass each; their changed rows held at once).
CHUNK = 16


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


# predict(base rows, per feature its matrix columns, per feature its shuffled values of those
# columns as (repeats, rows, columns)) -> (the base rows' classes, (features, repeats, rows))
BatchPredict = Callable[
    [np.ndarray, list[np.ndarray], list[np.ndarray]], tuple[np.ndarray, np.ndarray]
]


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
    `predict` gets the base rows and each feature's shuffled values, and predicts every
    permuted copy.
    """
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    n = len(matrix)
    groups = groups if groups is not None else [np.array([j]) for j in range(len(columns))]
    shuffled: list[np.ndarray] = []
    for index in groups:
        rng = check_random_state(seed)
        shuffling = np.arange(n)
        values = matrix[:, index]
        repeats = []
        for _ in range(n_repeats):
            rng.shuffle(shuffling)
            values = values[shuffling]
            repeats.append(values)
        shuffled.append(np.stack(repeats))
    base, predicted = predict(matrix, groups, shuffled)
    baseline = score(labels, base)
    scores = np.array([[score(labels, p) for p in feature] for feature in predicted])
    drops = baseline - scores
    return Importances(list(columns), drops.mean(axis=1), drops.std(axis=1), baseline)


def permuted_copies(
    matrix: np.ndarray, groups: list[np.ndarray], shuffled: list[np.ndarray]
) -> np.ndarray:
    """Every permuted copy of `matrix` (features x repeats of them), stacked in that order."""
    copies = []
    for index, repeats in zip(groups, shuffled, strict=True):
        for values in repeats:
            copy = matrix.copy()
            copy[:, index] = values
            copies.append(copy)
    return np.concatenate(copies) if copies else matrix[:0]


def plain_predict(predict: Callable[[np.ndarray], np.ndarray]) -> BatchPredict:
    """A BatchPredict that predicts the base rows and every permuted copy, stacked at once."""

    def batch(
        matrix: np.ndarray, groups: list[np.ndarray], shuffled: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(matrix)
        predicted = np.asarray(
            predict(np.concatenate([matrix, permuted_copies(matrix, groups, shuffled)]))
        )
        shape = (len(groups), len(shuffled[0]) if shuffled else 0, n)
        return predicted[:n], predicted[n:].reshape(shape)

    return batch


class _Copies:
    """The permuted copies of `base`, row by row, without building them whole: feature g's
    k-th shuffle of row r is the base row with the shuffled values in feature g's columns."""

    def __init__(
        self, base: np.ndarray, groups: list[np.ndarray], shuffled: list[np.ndarray]
    ) -> None:
        self.base, self.n = base, len(base)
        self.repeats = len(shuffled[0]) if shuffled else 0
        # two kinds of feature: of one or two columns, and wider (one-hot text); each kind
        # padded to its widest by repeating a feature's last column (written twice, the
        # same value); feature g is number local[g] of its kind
        wide = max((len(index) for index in groups), default=1)
        self.widths = [2, wide] if wide > 2 else [2]
        self.kind = np.array([int(len(index) > 2) for index in groups], dtype=np.int64)
        self.local = np.zeros(len(groups), dtype=np.int64)
        self.columns: list[np.ndarray] = []  # per kind, (feature of the kind, column)
        # per kind, the shuffled values as (repeat, feature of the kind x row, column): one
        # take gives a (feature, row) pair's repeats, compared with a box in long runs
        self.by_repeat: list[np.ndarray] = []
        for c, w in enumerate(self.widths):
            members = np.flatnonzero(self.kind == c)
            self.local[members] = np.arange(len(members))
            pad = [w - len(groups[g]) for g in members]
            self.columns.append(
                np.array(
                    [np.pad(groups[g], (0, p), "edge") for g, p in zip(members, pad, strict=True)],
                    dtype=np.intp,
                )
                .reshape(len(members), w)
                .copy(order="F")  # a column at a time
            )
            values = np.array(
                [
                    np.pad(shuffled[g], ((0, 0), (0, 0), (0, p)), "edge")
                    for g, p in zip(members, pad, strict=True)
                ],
                dtype=np.float32,
            ).reshape(len(members), self.repeats, self.n, w)
            self.by_repeat.append(values.transpose(1, 0, 2, 3).reshape(self.repeats, -1, w).copy())
        # a copy whose shuffled values (as the trees see them) are those of an earlier
        # repeat for the same feature and row is that copy: `first` per (feature x row,
        # repeat) says which are not; `repeated` and `source` pair the others, flat in the
        # (feature, repeat, row) order, with the earliest repeat of their values
        self.first = np.ones((len(groups) * self.n, self.repeats), dtype=bool)
        repeated, source = [], []
        for g, values in enumerate(shuffled):
            own = values.astype(np.float32)
            earliest = np.tile(np.arange(self.repeats), (self.n, 1))
            for k in range(self.repeats - 1, 0, -1):
                for j in range(k - 1, -1, -1):  # the earliest equal one is written last
                    same = (own[k] == own[j]) | (np.isnan(own[k]) & np.isnan(own[j]))
                    earliest[same.all(axis=1), k] = j
            row, later = np.nonzero(earliest != np.arange(self.repeats))
            self.first[g * self.n + row, later] = False
            repeated.append((g * self.repeats + later) * self.n + row)
            source.append((g * self.repeats + earliest[row, later]) * self.n + row)
        self.repeated = np.concatenate(repeated) if repeated else np.zeros(0, np.intp)
        self.source = np.concatenate(source) if source else np.zeros(0, np.intp)

    def moved(self, g: np.ndarray, r: np.ndarray, leaf: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Per pair (feature g, row r), per repeat: whether the shuffled values of g can take
        row r out of its leaf (row `leaf` of the boxes `box[0]` < x <= `box[1]`, per matrix
        column). Values all inside the box reach the same leaf (the row's other columns are
        its own, which reached it); a missing value is never inside, so it is predicted."""
        out = np.ones((self.repeats, len(g)), dtype=bool)
        width = box.shape[2]
        flat = box.reshape(2, -1)  # flat indices: faster than 2-D ones
        kinds = self.kind[g]
        for c in np.flatnonzero(np.bincount(kinds, minlength=len(self.widths))):
            at = np.flatnonzero(kinds == c)
            own = self.local[g[at]]
            low, high = np.take(flat, leaf[at, None] * width + self.columns[c][own], axis=1)
            values = np.take(self.by_repeat[c], own * self.n + r[at], axis=1)
            inside = values > low  # (repeats, pairs, columns)
            inside &= values <= high
            out[:, at] = ~(inside[..., 0] & inside[..., 1] if c == 0 else inside.all(axis=2))
        return out.T

    def rows(self, g: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Row r of the copy in which feature g is shuffled for the k-th time, per triple."""
        rows = np.take(self.base, r, axis=0)
        cells = rows.reshape(-1)  # flat indices, a column at a time: the fastest writes
        kinds = self.kind[g]
        for c in np.flatnonzero(np.bincount(kinds, minlength=len(self.widths))):
            at = np.flatnonzero(kinds == c)
            own = self.local[g[at]]
            pick = (k[at] * len(self.columns[c]) + own) * self.n + r[at]
            values = np.take(self.by_repeat[c].reshape(-1, self.widths[c]), pick, axis=0)
            start = at * rows.shape[1]
            for j, column in enumerate(self.columns[c].T):
                np.put(cells, column[own] + start, values[:, j])
        return rows


def path_groups(trees: list[Any], column_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per node of every tree (numbered from each tree's first node, `first[t]`), the
    groups (`column_group` of the columns) split on between its tree's root and it, as
    bits of 64-bit words; all trees walked together, level by level from their roots."""
    inners = [tree.tree_ for tree in trees]
    first = np.concatenate([[0], np.cumsum([t.node_count for t in inners])[:-1]]).astype(np.intp)
    left = np.concatenate([t.children_left + o for t, o in zip(inners, first, strict=True)])
    right = np.concatenate([t.children_right + o for t, o in zip(inners, first, strict=True)])
    feature = np.concatenate([t.feature for t in inners])
    own = np.zeros((len(feature), int(column_group.max(initial=0)) // 64 + 1), dtype=np.uint64)
    split = np.flatnonzero(feature >= 0)
    group = column_group[feature[split]]
    own[split, group // 64] = np.left_shift(np.uint64(1), (group % 64).astype(np.uint64))
    seen = np.zeros_like(own)
    level = first[feature[first] >= 0]
    while len(level):
        for child in (left[level], right[level]):
            seen[child] = seen[level] | own[level]
        level = np.concatenate([left[level], right[level]])
        level = level[feature[level] >= 0]
    return seen, first


def node_boxes(trees: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per node of `trees` (numbered from each tree's first node, `first[t]`), the box of
    float32 inputs that reach it: per column, `box[0]` < x <= `box[1]`. A split sends x left when
    x <= its threshold; for a float32 x that is x <= the largest float32 not above the
    threshold, so the bounds are float32 and the test is exact."""
    inners = [tree.tree_ for tree in trees]
    first = np.concatenate([[0], np.cumsum([t.node_count for t in inners])[:-1]]).astype(np.intp)
    left = np.concatenate([t.children_left + o for t, o in zip(inners, first, strict=True)])
    right = np.concatenate([t.children_right + o for t, o in zip(inners, first, strict=True)])
    feature = np.concatenate([t.feature for t in inners])
    threshold = np.concatenate([t.threshold for t in inners])
    bound = threshold.astype(np.float32)
    above = bound > threshold
    bound[above] = np.nextafter(bound[above], np.float32(-np.inf))
    box = np.full((2, len(feature), inners[0].n_features if inners else 0), np.inf, np.float32)
    lo, hi = box
    lo[:] = -np.inf
    level = first[feature[first] >= 0]
    while len(level):
        split, cut = feature[level], bound[level]
        for child in (left[level], right[level]):
            lo[child], hi[child] = lo[level], hi[level]
        hi[left[level], split] = np.minimum(hi[level, split], cut)
        lo[right[level], split] = np.maximum(lo[level, split], cut)
        level = np.concatenate([left[level], right[level]])
        level = level[feature[level] >= 0]
    return box, first


def forest_predict(forest: Any, threads: int = 1) -> BatchPredict:
    """A BatchPredict for a fitted scikit-learn `RandomForestClassifier` that predicts each
    permuted row only through the trees whose path for it can change.

    A tree's path for a row changes only at a node that splits on a permuted column, so a row
    whose path (on the base rows) meets no split on a feature's columns keeps that tree's base
    prediction in every copy where that feature is shuffled; of the others, a copy whose
    shuffled values stay inside its base row's leaf box (every split on its path, per column,
    as float32 bounds: `node_boxes`) lands in the same leaf and keeps it too, and a repeat
    whose values are an earlier repeat's lands where that one does. Only the rest go through
    the tree again (on the demo, about one (feature, repeat, row, tree) case in thirty), built
    from the base row and the shuffled values, never as whole copies. A copy's sum is the base
    rows' sum plus its trees' changes; where that leaves two classes within rounding of each
    other, the row is summed again tree by tree in order, as the forest's one-thread
    `predict_proba` sums: the classes are exactly that predict's, whatever `threads` (threads
    only share the trees' work).
    """
    from concurrent.futures import ThreadPoolExecutor

    trees = forest.estimators_
    classes = np.asarray(forest.classes_)
    n_classes = len(classes)

    def predict(
        matrix: np.ndarray, groups: list[np.ndarray], shuffled: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        base = np.ascontiguousarray(matrix, dtype=np.float32)  # as the trees read them
        n, n_groups = len(base), len(groups)
        copies = _Copies(base, groups, shuffled)
        repeats = copies.repeats
        column_group = np.full(base.shape[1], n_groups)  # not shuffled: a group of its own
        for g, index in enumerate(groups):
            column_group[index] = g
        seen, first = path_groups(trees, column_group)

        def changes(chunk: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """(each tree's base proba, in order; place in the flat (feature, repeat, row)
            order and change of proba of the copies whose shuffled values take their base row
            out of its leaf) for the trees of `chunk`, from their low-level `apply` and leaf
            values: exactly what their `predict_proba` returns. Trees are taken a chunk at a
            time so that all but `apply` is one array operation per chunk."""
            inners = [trees[t].tree_ for t in chunk]
            box, offsets = node_boxes([trees[t] for t in chunk])
            values = np.concatenate([inner.value[:, 0, :n_classes] for inner in inners])
            leaf = np.stack([inner.apply(base) for inner in inners])  # (trees, rows)
            bits = np.unpackbits(
                seen[first[chunk.start : chunk.stop, None] + leaf]
                .astype("<u8", copy=False)
                .view(np.uint8),
                axis=2,
                bitorder="little",
            )
            node = offsets[:, None] + leaf  # per tree and row: its leaf's box and value
            t, g, r = np.nonzero(bits[:, :, :n_groups].transpose(0, 2, 1))  # paths meeting g
            leaf_of = node.reshape(-1)[t * n + r]
            moved = copies.moved(g, r, leaf_of, box)  # (pairs, repeats)
            moved &= np.take(copies.first, g * n + r, axis=0)  # the others are copied
            pair, k = np.nonzero(moved)
            t, g, r, leaf_of = t[pair], g[pair], r[pair], leaf_of[pair]
            again = np.empty(len(t), dtype=np.intp)
            ends = np.searchsorted(t, np.arange(len(inners) + 1))  # each tree's rows, in order
            for i, inner in enumerate(inners):  # a tree's rows at a time: they stay in cache
                at = slice(ends[i], ends[i + 1])
                again[at] = inner.apply(copies.rows(g[at], k[at], r[at]))
            change = values[offsets[t] + again] - values[leaf_of]
            return values[node], (g * repeats + k) * n + r, change

        total = np.zeros((n, n_classes))  # the base rows' sum, tree by tree in order
        change = np.zeros((n_classes, n_groups * repeats * n))  # a class at a time
        chunks = [range(s, min(s + CHUNK, len(trees))) for s in range(0, len(trees), CHUNK)]
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for base_proba, place, delta in pool.map(changes, chunks):
                for proba in base_proba:
                    total += proba
                for c in range(n_classes):
                    change[c] += np.bincount(place, delta[:, c], minlength=change.shape[1])
        copy_total = total + change.T.reshape(n_groups, repeats, n, n_classes)
        # a repeat whose values are an earlier repeat's is that copy, through every tree
        flat = copy_total.reshape(-1, n_classes)
        flat[copies.repeated] = flat[copies.source]
        total /= len(trees)
        top = np.sort(copy_total, axis=-1)
        margin = top[..., -1] - top[..., -2] if n_classes > 1 else np.inf + top[..., -1]
        close = np.nonzero(margin <= 1e-9 * len(trees))
        copy_total /= len(trees)
        if len(close[0]):  # near-ties: summed again in the forest's own order
            rows = copies.rows(*close)
            exact = np.zeros((len(rows), n_classes))
            for tree in trees:
                exact += tree.tree_.value[:, 0, :n_classes][tree.tree_.apply(rows)]
            copy_total[close] = exact / len(trees)
        return classes[total.argmax(axis=1)], classes[copy_total.argmax(axis=-1)]

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
        # float32 columns, as the trees' own input check makes them
        encoded = encode_columns(frame, train).astype(np.float32).T.copy()
        # Balanced class weights, computed once per inner fold rather than per column.
        weights = compute_sample_weight("balanced", labels[train])
        for j, column in enumerate(encoded):
            tree = DecisionTreeClassifier(
                max_depth=3, min_samples_leaf=max(5, len(train) // 50), random_state=seed
            )
            fit_rows, val_rows = column[train].reshape(-1, 1), column[val].reshape(-1, 1)
            # Columns the trees' input check would pass unchanged (float32 already; finite
            # on the fit rows, no infinity on the others) skip it: it was half of this
            # function's time. A missing value on the fit rows keeps the check, which is
            # what routes missing values in the fit; an infinity keeps it to be refused.
            tree.fit(
                fit_rows,
                labels[train],
                sample_weight=weights,
                check_input=not np.isfinite(fit_rows).all(),
            )
            proba = tree.predict_proba(val_rows, check_input=bool(np.isinf(val_rows).any()))
            predicted[j, val] = tree.classes_[proba.argmax(1)]


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
