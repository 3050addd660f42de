"""Shared helpers for the feature tests."""

from __future__ import annotations

import numpy as np
import polars as pl


def series(df: pl.DataFrame, code: str, column: str) -> np.ndarray:
    """One code's column as float64, in date order."""
    return df.filter(pl.col("Code") == code).sort("Date")[column].cast(pl.Float64).to_numpy()


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 2e-5) -> None:
    """Equal within float32 tolerance, with NaN in the same places."""
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-6, equal_nan=True)
