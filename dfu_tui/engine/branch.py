"""What every branch returns for one fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class BranchOutput:
    """Per-sample class probabilities of one branch on one fold.

    Rows follow the fold's validation / training sample order; a NaN row means the sample
    has no input for this branch (no image of the modality).
    """

    val_proba: np.ndarray
    train_proba: np.ndarray
    oof_proba: np.ndarray | None = None  # inner out-of-fold, training rows
    info: dict[str, Any] = field(default_factory=dict)
