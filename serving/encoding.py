"""The snapshot as a model's input matrix: one encoding for every LightGBM model that serving loads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.errors import UserError


def feature_matrix(
    frame: pd.DataFrame, features: list[str], categorical_levels: dict[str, list[str]], model: str
) -> np.ndarray:
    """(rows, features) float matrix of ``frame``; a categorical string becomes its level's code
    (a level the model never saw is missing), anything else a number (unparseable: missing)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise UserError(f"The {model} model needs the columns {', '.join(missing)}, which the input lacks.")
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = frame[name]
        if name in categorical_levels:
            codes = pd.Categorical(column.astype(object), categories=categorical_levels[name]).codes
            out[:, j] = np.where(codes < 0, np.nan, codes)
        elif column.dtype.kind in "biuf":  # numbers already (the snapshot's columns): no parsing
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out
