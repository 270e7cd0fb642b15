"""Reading the clinic's metadata CSV into the sample table, with one-line errors for bad input."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dfu_tui.data.schema import (
    CLASSES,
    FREE_TEXT_COLUMNS,
    ID_COLUMNS,
    LABEL_DERIVED_COLUMNS,
    TEXT_COLUMNS,
)
from dfu_tui.errors import InputError

APPT_COLUMN = "Appt#"
DFU_COLUMN = "DFU#"


@dataclass(frozen=True)
class SampleTable:
    """One row per sample `(patient, appt, dfu)`, in file order, exact duplicates collapsed."""

    frame: pd.DataFrame  # the metadata columns, typed (numbers as float, text as str or NaN)
    labels: np.ndarray  # int class index into CLASSES, per sample
    patients: np.ndarray  # the patient id, per sample (the CV group)
    keys: list[tuple[int, int, int]]  # (patient, appt, dfu), per sample
    feature_columns: list[str]  # columns a model may use (never the label or ids)
    duplicates_collapsed: int


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
    return text


def parse_csv(text: str, path: Path, what: str) -> pd.DataFrame:
    """Parse CSV text with every cell as a string ('' for empty), or raise InputError."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a valid {what}: {first}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InputError(f"{path}: no data rows; expected a {what} with at least one row")
    return frame


def _rows(mask: pd.Series, limit: int = 5) -> str:
    """File line numbers (header is line 1) of the rows where `mask` holds."""
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def _require_int(frame: pd.DataFrame, column: str, path: Path, problems: list[str]) -> None:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        problems.append(f"{path}: column '{column}': expected integers, rows {_rows(bad)}")


def read_metadata(
    path: Path,
    label_column: str,
    patient_column: str,
    exclude_columns: list[str] | tuple[str, ...] = (),
    use_free_text: bool = False,
) -> SampleTable:
    """Read the metadata CSV into a SampleTable; raise InputError listing every problem."""
    frame = parse_csv(read_csv_text(path, "metadata CSV"), path, "metadata CSV")
    problems: list[str] = []
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
    unknown = ~label.isin(CLASSES)
    if unknown.any():
        parts = []
        for value in sorted(set(label[unknown])):
            shown = f"'{value}'" if value else "empty"
            parts.append(f"{shown} (rows {_rows(unknown & (label == value))})")
        problems.append(
            f"{path}: column '{label_column}': unknown label values {'; '.join(parts)}; "
            f"expected one of {', '.join(CLASSES)}"
        )
    if problems:
        raise InputError(problems)

    before = len(frame)
    frame = frame.drop_duplicates().reset_index(drop=True)
    collapsed = before - len(frame)
    key_cols = [patient_column, APPT_COLUMN, DFU_COLUMN]
    keys = frame[key_cols].apply(lambda c: pd.to_numeric(c.str.strip()).astype(int))
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise InputError(
            f"{path}: duplicate sample keys ({', '.join(key_cols)}) with differing values, "
            f"rows {_rows(dup)} of the de-duplicated table; expected one row per sample"
        )

    label = frame[label_column].str.strip()
    typed = _type_columns(frame)
    never = {label_column, patient_column, *LABEL_DERIVED_COLUMNS, *ID_COLUMNS}
    never |= set(exclude_columns)
    if not use_free_text:
        never |= set(FREE_TEXT_COLUMNS)
    features = [c for c in typed.columns if c not in never]
    return SampleTable(
        frame=typed,
        labels=np.array([CLASSES.index(v) for v in label], dtype=np.int64),
        patients=keys[patient_column].to_numpy(dtype=np.int64),
        keys=[tuple(map(int, row)) for row in keys.to_numpy()],  # type: ignore[misc]
        feature_columns=features,
        duplicates_collapsed=collapsed,
    )


def _type_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty cells become missing; numeric columns become floats, text columns stay strings.

    A column outside the known text columns is numeric when all its non-empty cells parse
    as numbers; otherwise it is treated as text (so an unexpected column is not lost).
    """
    out = {}
    for column in frame.columns:
        cells = frame[column].str.strip().mask(frame[column].str.strip() == "")
        if column not in TEXT_COLUMNS:
            numbers = pd.to_numeric(cells, errors="coerce")
            if numbers.notna().sum() == cells.notna().sum():
                out[column] = numbers.astype(float)
                continue
        out[column] = cells.astype(object)
    return pd.DataFrame(out, index=frame.index)
