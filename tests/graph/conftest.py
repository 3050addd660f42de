"""Panels with known structure for the graph tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest


def panel_from_returns(
    returns: np.ndarray,
    sectors: list[str | None] | None = None,
    markets: list[str | None] | None = None,
    start: dt.date = dt.date(2024, 1, 1),
) -> pl.DataFrame:
    """A panel whose close prices have the given daily log returns [T, N] (NaN: no trade).

    Row 0 of ``returns`` is ignored (the first close has no return). A NaN return on day t is
    a null close on t, so day t + 1 has no return either; prices continue after the gap.
    """
    t, n = returns.shape
    steps = np.nan_to_num(returns, nan=0.0)
    steps[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(steps, axis=0))
    close[np.isnan(returns)] = np.nan
    dates = [start + dt.timedelta(days=i) for i in range(t)]
    codes = [f"{1000 + j}0" for j in range(n)]
    sectors = sectors or ["0050"] * n
    markets = markets or ["0111"] * n
    return pl.DataFrame(
        {
            "Date": pl.Series([d for d in dates for _ in range(n)], dtype=pl.Date),
            "Code": codes * t,
            "close": close.ravel(),
            "market": markets * t,
            "sector33": sectors * t,
            "sector17": [None if s is None else s[:2] for s in sectors] * t,
        },
    ).with_columns(pl.col("close").fill_nan(None))


def sector_factor_returns(
    rng: np.random.Generator, days: int, sizes: list[int], loading: float = 1.0
) -> tuple[np.ndarray, list[str]]:
    """Returns [days, N] = market + sector factor + noise (daily vol ~2%), and the sectors."""
    sector = np.repeat(np.arange(len(sizes)), sizes)
    market = rng.normal(0, 0.01, (days, 1))
    factors = rng.normal(0, 0.01, (days, len(sizes)))
    noise = rng.normal(0, 0.01, (days, sector.size))
    returns = 0.5 * market + loading * factors[:, sector] + noise
    return returns, [f"{50 + s:04d}" for s in sector]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def make_panel():
    return panel_from_returns


@pytest.fixture
def factor_returns():
    return sector_factor_returns
