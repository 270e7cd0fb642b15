"""Reading the clinic's metadata CSV into the sample table, with one-line errors for bad input."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dfu_tui.data.schema import (
    CLASSES,
    FEATURE_GROUPS,
    FREE_TEXT_COLUMNS,
    ID_COLUMNS,
    LABEL_DERIVED_COLUMNS,
    METADATA_COLUMNS,
    TEXT_COLUMNS,
)
from dfu_tui.errors import MAX_PROBLEMS, InputError

APPT_COLUMN = "Appt#"
DFU_COLUMN = "DFU#"


@dataclass(frozen=True)
class SampleTable:
    """One row per sample, in file order, exact duplicate rows collapsed.

    Every row is a sample: rows that share a key `(patient, appt, dfu)` but differ are
    separate visits recorded under one appointment number (the clinic's file has three such
    pairs); images named with that key belong to each of them.
    """

    frame: pd.DataFrame  # the metadata columns, typed (numbers as float, text as str or NaN)
    labels: np.ndarray  # int class index into CLASSES, per sample
    patients: np.ndarray  # the patient id, per sample (the CV group)
    keys: list[tuple[int, int, int]]  # (patient, appt, dfu), per sample; may repeat
    feature_columns: list[str]  # columns a model may use (never the label or ids)
    duplicates_collapsed: int
    lines: list[int] = field(default_factory=list)  # file line of each sample (header: 1)
    repeated_keys: list[list[int]] = field(default_factory=list)  # lines sharing one key
    excluded: dict[str, list[str]] = field(default_factory=dict)  # why -> columns left out
    extra_columns: list[str] = field(default_factory=list)  # columns not in the clinic format

    def occurrence(self) -> list[int]:
        """Per sample, 1 + how many earlier samples share its key (1 for a unique key)."""
        seen: dict[tuple[int, int, int], int] = {}
        out = []
        for key in self.keys:
            seen[key] = seen.get(key, 0) + 1
            out.append(seen[key])
        return out

    def sample_ids(self) -> list[str]:
        """A readable id per sample: `P001-A00-D1`, with `#2` on a repeated key's second row."""
        return [
            f"P{p:03d}-A{a:02d}-D{d}" + (f"#{n}" if n > 1 else "")
            for (p, a, d), n in zip(self.keys, self.occurrence(), strict=True)
        ]


def _label_like(value: str) -> bool:
    """A short non-numeric text such as a mistyped label ('X', 'p'), safe to show."""
    return len(value) <= 3 and not value.replace(".", "", 1).lstrip("-").isdigit()


def read_csv_text(path: Path, what: str) -> str:
    """Read a UTF-8 CSV (byte-order mark allowed) or raise a one-line InputError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: expected a {what}, found a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"expected a UTF-8 {what}"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: empty file; expected a {what} with a header row")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(f"{path}: line {line}: a NUL byte; the {what} is damaged (not text)")
    return text


def parse_csv(text: str, path: Path, what: str) -> pd.DataFrame:
    """Parse CSV text with every cell as a stripped string ('' for empty), or raise InputError.

    What a spreadsheet re-save adds is undone: spaces around values and headers, rows with
    every cell empty, and unnamed columns with every cell empty. The index keeps each row's
    position in the file, so messages can name its line.
    """
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a valid {what}: {first}") from None
    header = next(csv.reader(io.StringIO(text)), [])
    names = [c.strip() for c in header]
    twice = sorted({c for c in names if c and names.count(c) > 1})
    if twice:
        where = "; ".join(
            f"'{c}' (columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == c)})"
            for c in twice
        )
        raise InputError(f"{path}: a column name appears twice in the header: {where}")
    frame.columns = [str(c).strip() for c in frame.columns]
    # one pass of str.strip per column (pandas' .str accessor costs ~1 ms a column: the
    # clinic's file has over 200)
    frame = pd.DataFrame(
        {i: [str(v).strip() for v in frame.iloc[:, i].tolist()] for i in range(frame.shape[1])},
        index=frame.index,
        dtype=str,
    ).set_axis(frame.columns, axis=1)
    frame = frame.loc[~(frame == "").all(axis=1)]
    unnamed = [
        c for c in frame.columns if (c == "" or c.startswith("Unnamed:")) and frame[c].eq("").all()
    ]
    frame = frame.drop(columns=unnamed)
    if frame.empty:
        raise InputError(f"{path}: no data rows; expected a {what} with at least one row")
    return frame


def _rows(mask: pd.Series, limit: int = 5) -> str:
    """File line numbers (header is line 1) of the rows where `mask` holds."""
    return _lines([int(i) + 2 for i in mask.index[mask.to_numpy()]], limit)


def _lines(numbers: list[int], limit: int = 5) -> str:
    lines = [str(n) for n in numbers]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def _require_int(frame: pd.DataFrame, column: str, path: Path, problems: list[str]) -> None:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | ~np.isfinite(values) | (values != values.round())
    if bad.any():
        problems.append(f"{path}: column '{column}': expected integers, rows {_rows(bad)}")


def read_metadata(
    path: Path,
    label_column: str,
    patient_column: str,
    exclude_columns: list[str] | tuple[str, ...] = (),
    use_free_text: bool = False,
    history: bool = False,
    where: str = "",
    labels_optional: bool = False,
) -> SampleTable:
    """Read the metadata CSV into a SampleTable; raise InputError listing every problem.

    With `labels_optional` (new visits to predict) the label column may be missing or empty:
    such a row's label is -1 (unknown); a value that is not a label is still an error.

    `exclude_columns` names columns or groups (`FEATURE_GROUPS`) to leave out of the
    features; `history` adds the per-wound visit-history columns; `where` names the config
    key in messages about the exclusions.
    """
    frame = parse_csv(read_csv_text(path, "metadata CSV"), path, "metadata CSV")
    problems: list[str] = []
    if labels_optional and label_column not in frame.columns:
        frame[label_column] = ""
    for column in (label_column, patient_column, APPT_COLUMN, DFU_COLUMN):
        if column not in frame.columns:
            problems.append(
                f"{path}: missing column '{column}' (found {len(frame.columns)} columns: "
                f"{', '.join(list(frame.columns)[:4])}, ...)"
            )
    if problems:
        raise InputError(problems)

    for column in (patient_column, APPT_COLUMN, DFU_COLUMN):
        _require_int(frame, column, path, problems)
    label = frame[label_column].str.strip()
    unknown = ~label.isin(CLASSES) & ~(label.eq("") if labels_optional else False)
    if unknown.any():
        values = sorted(set(label[unknown]))
        if len(values) <= 3 and all(_label_like(v) for v in values):  # a typo: name it
            parts = [
                f"{repr(v) if v else 'empty'} (rows {_rows(unknown & (label == v))})"
                for v in values
            ]
            problems.append(
                f"{path}: column '{label_column}': unknown label values {'; '.join(parts)}; "
                f"expected one of {', '.join(CLASSES)}"
            )
        else:  # never list them: a wrong label column would print patients' data
            problems.append(
                f"{path}: column '{label_column}': {int(unknown.sum())} rows hold "
                f"{len(values)} value(s) that are not labels (rows {_rows(unknown)}); "
                f"expected one of {', '.join(CLASSES)}"
            )
    if problems:
        raise InputError(problems)

    before = len(frame)
    frame = frame.drop_duplicates()
    collapsed = before - len(frame)
    lines = [int(i) + 2 for i in frame.index]
    frame = frame.reset_index(drop=True)
    known = [c for c in METADATA_COLUMNS if c in frame.columns]
    extra = [c for c in frame.columns if c not in METADATA_COLUMNS]
    frame = frame[known + extra]  # a re-save with columns in another order loads the same
    key_cols = [patient_column, APPT_COLUMN, DFU_COLUMN]
    keys = frame[key_cols].apply(lambda c: pd.to_numeric(c.str.strip()).astype(int))
    key_tuples: list[tuple[int, int, int]] = [tuple(map(int, row)) for row in keys.to_numpy()]  # type: ignore[misc]
    repeated: dict[tuple[int, int, int], list[int]] = {}
    for key, line in zip(key_tuples, lines, strict=True):
        repeated.setdefault(key, []).append(line)

    label = frame[label_column]
    typed = _type_columns(frame)
    for column in typed.select_dtypes("number").columns:
        # "inf", "-Infinity", 1e400: no clinical value is one
        odd = np.flatnonzero(np.isinf(typed[column].to_numpy(dtype=float)))
        if len(odd):
            problems.append(
                f"{path}: column '{column}': {len(odd)} value(s) that are not finite numbers "
                f"(inf, or beyond a double's range), rows {_lines([lines[i] for i in odd])}"
            )
    if problems:
        raise InputError(problems)
    if history:
        from dfu_tui.data.history import add_visit_history

        typed = add_visit_history(typed, patient_column)
    features, excluded = select_features(
        list(typed.columns),
        label_column,
        patient_column,
        exclude_columns,
        use_free_text,
        where or f"{path}: exclude",
    )
    return SampleTable(
        frame=typed,
        labels=np.array(
            [CLASSES.index(v.strip()) if v.strip() in CLASSES else -1 for v in label],
            dtype=np.int64,
        ),
        patients=keys[patient_column].to_numpy(dtype=np.int64),
        keys=key_tuples,
        feature_columns=features,
        duplicates_collapsed=collapsed,
        lines=lines,
        repeated_keys=[v for v in repeated.values() if len(v) > 1],
        excluded=excluded,
        extra_columns=[c for c in extra if c not in (label_column, patient_column)],
    )


def select_features(
    columns: list[str],
    label_column: str,
    patient_column: str,
    exclude: list[str] | tuple[str, ...],
    use_free_text: bool,
    where: str,
) -> tuple[list[str], dict[str, list[str]]]:
    """The feature columns, and what was left out and why.

    Never features: the label, the columns derived from it, the identifiers. Then the free
    text columns unless asked for, then every column or group named in `exclude` (a name that
    is neither is an error naming `where`).
    """
    import difflib

    present = set(columns)
    excluded: dict[str, list[str]] = {}
    never = [label_column, *LABEL_DERIVED_COLUMNS, patient_column, *ID_COLUMNS]
    excluded["label or identifier (never a feature)"] = [c for c in never if c in present]
    if not use_free_text:
        excluded["free_text"] = [c for c in FREE_TEXT_COLUMNS if c in present]
    problems: list[str] = []
    for name in exclude:
        if name in FEATURE_GROUPS:
            excluded[name] = [c for c in FEATURE_GROUPS[name] if c in present]
        elif name in present:
            excluded.setdefault("by name", []).append(name)
        else:
            # a suggestion only for the lines the error shows (50,000 unknown names took
            # 5 s of close-match searches for 20 lines)
            near = (
                difflib.get_close_matches(name, [*FEATURE_GROUPS, *columns], n=1)
                if len(problems) < MAX_PROBLEMS
                else []
            )
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(
                f"{where}: '{name}' is neither a column of the metadata CSV nor a group "
                f"({', '.join(FEATURE_GROUPS)}){hint}"
            )
    if problems:
        raise InputError(problems)
    left_out = {c for cols in excluded.values() for c in cols}
    features = [c for c in columns if c not in left_out]
    return features, {k: v for k, v in excluded.items() if v}


def _type_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty cells become missing; numeric columns become floats, text columns stay strings.

    A column outside the known text columns is numeric when all its non-empty cells parse
    as numbers; otherwise it is treated as text (so an unexpected column is not lost).
    """
    out = {}
    for column in frame.columns:  # cells are stripped by parse_csv
        cells = frame[column].mask(frame[column] == "")
        if column not in TEXT_COLUMNS:
            numbers = pd.to_numeric(cells, errors="coerce")
            if numbers.notna().sum() == cells.notna().sum():
                out[column] = numbers.astype(float)
                continue
        out[column] = cells.astype(object)
    return pd.DataFrame(out, index=frame.index)
