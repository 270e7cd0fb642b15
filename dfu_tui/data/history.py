"""Per-wound visit history: features of a visit computed from the same wound's earlier visits.

A wound is `(Patient#, DFU#)`; its visits are ordered by `Appt Days` (then `Appt#`, then file
order). Only earlier visits and never the label are read, and a wound never leaves its
patient, so patient-grouped folds stay clean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dfu_tui.data.schema import (
    DAYS_SINCE_PREVIOUS,
    HISTORY_MEASUREMENTS,
    VISIT_INDEX,
    change_column,
    previous_column,
)

APPT_DAYS, APPT, DFU = "Appt Days", "Appt#", "DFU#"


def add_visit_history(frame: pd.DataFrame, patient_column: str) -> pd.DataFrame:
    """`frame` with the visit-history columns appended (rows and their order unchanged).

    Visit index (0 for a wound's first visit), days since its previous visit, and for each
    numeric measurement its value at the previous visit and the change since (missing on a
    first visit, or when either value is missing).
    """
    order = pd.DataFrame(
        {
            "patient": frame[patient_column],
            "dfu": frame[DFU],
            "days": frame.get(APPT_DAYS, np.nan),
            "appt": frame[APPT],
            "row": np.arange(len(frame)),
        }
    ).sort_values(["patient", "dfu", "days", "appt", "row"], na_position="last", kind="stable")
    wound = order.groupby(["patient", "dfu"], sort=False)
    rows = order["row"].to_numpy()
    out: dict[str, np.ndarray] = {}
    index = np.empty(len(frame))
    index[rows] = wound.cumcount().to_numpy()
    out[VISIT_INDEX] = index
    since = np.empty(len(frame))
    since[rows] = wound["days"].diff().to_numpy()
    out[DAYS_SINCE_PREVIOUS] = since
    for column in HISTORY_MEASUREMENTS:
        if column not in frame or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].to_numpy(dtype=float)[rows]
        previous = np.empty(len(frame))
        previous[rows] = (
            pd.Series(values, index=order.index).groupby([order["patient"], order["dfu"]]).shift(1)
        ).to_numpy()
        out[previous_column(column)] = previous
        out[change_column(column)] = frame[column].to_numpy(dtype=float) - previous
    return pd.concat([frame, pd.DataFrame(out, index=frame.index)], axis=1)
