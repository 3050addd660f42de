"""Daily log returns of the panel as a dense date × code matrix.

The trading calendar is the panel's own set of distinct dates. The return of a code on trading
day t is ``log(close_t / close_{t-1})`` where t-1 is the previous *trading day*, not the code's
previous row: a code with no row or no trade (null close) on either day has no return on t, so
a gap never turns into a multi-day return that would inflate its variance.

Trailing moments come from running sums, whose rounding leaves noise of either sign where the
values do not move; a window whose values are equal up to rounding (:func:`trailing_flat`) has
a standard deviation of exactly 0 and no beta, so that ``std > 0`` never flips on that noise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from atft_kedro.features.returns_volatility import negligible

REQUIRED_COLUMNS = ("Date", "Code", "close", "market", "sector33")
EDGE_ATTRIBUTES = ("market", "sector33")
MIN_GROUP_CODES = 5  # a sector with fewer returns that day is demeaned by the market mean instead

Residualize = Literal["none", "market", "sector33"]


@dataclass(frozen=True)
class ReturnPanel:
    """The panel's returns on a dense grid of T trading dates × N codes.

    dates        list of T dates, ascending (the trading calendar)
    codes        list of N codes, ascending
    log_returns  float64 [T, N], NaN where no return exists
    present      bool [T, N], True where the panel has a row for (date, code)
    categories   {"market" | "sector33": int32 [T, N]} point-in-time category index, -1 if null
    """

    dates: list[dt.date]
    codes: list[str]
    log_returns: np.ndarray
    present: np.ndarray
    categories: dict[str, np.ndarray]


def _validate(panel: pl.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: missing column(s) {missing}; has {panel.columns}")
    bad = panel.filter(pl.col("close") <= 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"panel: column 'close' has {bad.height} non-positive values "
            f"(first: Code {row['Code']} on {row['Date']})"
        )
    dupes = panel.filter(pl.struct("Date", "Code").is_duplicated())
    if dupes.height:
        row = dupes.row(0, named=True)
        raise ValueError(
            f"panel: {dupes.height} duplicated (Date, Code) rows "
            f"(first: Code {row['Code']} on {row['Date']})"
        )


def daily_log_returns(panel: pl.DataFrame) -> ReturnPanel:
    """Pivot the panel (Date, Code, close, market, sector33) into a :class:`ReturnPanel`."""
    _validate(panel)
    indexed = panel.select(
        (pl.col("Date").rank("dense") - 1).cast(pl.Int64).alias("t"),
        (pl.col("Code").rank("dense") - 1).cast(pl.Int64).alias("n"),
        pl.col("close").cast(pl.Float64).fill_nan(None),
        *[(pl.col(c).rank("dense") - 1).fill_null(-1).cast(pl.Int32) for c in EDGE_ATTRIBUTES],
    )
    dates = panel["Date"].unique().sort().to_list()
    codes = panel["Code"].unique().sort().to_list()
    t, n = indexed["t"].to_numpy(), indexed["n"].to_numpy()

    close = np.full((len(dates), len(codes)), np.nan)
    close[t, n] = indexed["close"].to_numpy(allow_copy=True)
    present = np.zeros(close.shape, dtype=bool)
    present[t, n] = True
    categories = {}
    for column in EDGE_ATTRIBUTES:
        grid = np.full(close.shape, -1, dtype=np.int32)
        grid[t, n] = indexed[column].to_numpy()
        categories[column] = grid

    log_returns = np.full(close.shape, np.nan)
    with np.errstate(invalid="ignore"):
        log_returns[1:] = np.log(close[1:]) - np.log(close[:-1])
    return ReturnPanel(dates, codes, log_returns, present, categories)


def _group_mean(x: np.ndarray, group: np.ndarray, valid: np.ndarray, n_groups: int):
    """Per-day mean and count of ``x [T, N]`` within each group id in ``[0, n_groups)``."""
    n_t = x.shape[0]
    key = (np.arange(n_t)[:, None] * n_groups + group)[valid]
    count = np.bincount(key, minlength=n_t * n_groups).reshape(n_t, n_groups)
    total = np.bincount(key, weights=x[valid], minlength=n_t * n_groups).reshape(n_t, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, count


def trailing_flat(x: np.ndarray, window: int, floor: float = 1.0) -> np.ndarray:
    """bool [T, N]: whether the finite values of each column of ``x`` over rows t−window+1 … t
    are one value up to rounding: their range is :func:`negligible` next to their magnitude
    plus ``floor`` (1 for logs such as log returns, whose rounding is relative to 1). True where
    the window has no finite value.

    Max and min are exact, so unlike a variance from running sums this does not depend on the
    rows before the window.
    """
    finite = np.isfinite(x)
    trailing = {"size": window, "axis": 0, "mode": "constant", "origin": (window - 1) // 2}
    hi = maximum_filter1d(np.where(finite, x, -np.inf), cval=-np.inf, **trailing)
    lo = minimum_filter1d(np.where(finite, x, np.inf), cval=np.inf, **trailing)
    return negligible(hi - lo, np.maximum(np.abs(hi), np.abs(lo)) + floor)


def market_betas(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(β [T, N], market [T, 1]): each code's OLS beta on the equal-weight market return over the
    ``window`` days before t (t−window … t−1: known before day t's return), and the market.

    β is 1 where fewer than 20 of those days have a return (too few to estimate it), or where the
    market did not move on them (:func:`trailing_flat`: its variance is rounding noise).
    """
    valid = np.isfinite(x)
    market, _ = _group_mean(x, np.zeros(x.shape, dtype=np.int64), valid, 1)
    m = np.where(valid, market, 0.0)
    r = np.where(valid, x, 0.0)

    def before(a: np.ndarray) -> np.ndarray:  # Σ over t-window … t-1
        total = np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
        t = np.arange(a.shape[0])
        return total[t] - total[np.clip(t - window, 0, None)]

    n = before(valid.astype(np.float64))
    sm, sr, smm, smr = before(m), before(r), before(m * m), before(m * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = (smr - sm * sr / n) / (smm - sm * sm / n)
    flat = np.ones(x.shape, dtype=bool)  # the market over each code's days t−window … t−1
    flat[1:] = trailing_flat(np.where(valid, market, np.nan), window)[:-1]
    beta = np.where((n >= 20) & ~flat & np.isfinite(beta), beta, 1.0)
    return beta, market


def residual_returns(
    returns: ReturnPanel, by: Residualize, beta_window: int | None = None
) -> ReturnPanel:
    """Returns net of the day's common move, so correlations show the structure beyond it.

    ``market``: minus the equal-weighted cross-sectional mean of the day. ``sector33``: minus the
    mean of the code's 33-sector that day (the market mean where the sector has fewer than
    ``MIN_GROUP_CODES`` returns or the code has no sector). With ``beta_window`` each return is
    first net of β × the market return, β estimated over the ``beta_window`` days before t
    (:func:`market_betas`): without it, stocks whose betas differ alike from their sector's
    co-move with the market and look like a group. Only day-t returns and earlier days' betas
    enter day t's residual, so the graph stays point-in-time. ``none`` returns the panel unchanged.
    """
    if by == "none":
        return returns
    if by not in ("market", "sector33"):
        raise ValueError(f"params:graph.residualize: expected none | market | sector33, got {by!r}")
    x = returns.log_returns
    if beta_window:
        beta, market = market_betas(x, beta_window)
        x = x - beta * market
    valid = np.isfinite(x)
    market, _ = _group_mean(x, np.zeros(x.shape, dtype=np.int64), valid, 1)
    common = np.broadcast_to(market, x.shape)
    if by == "sector33":
        sector = returns.categories["sector33"].astype(np.int64)
        known = sector >= 0
        group = np.where(known, sector, 0)
        n_groups = int(group.max(initial=0)) + 1
        mean, count = _group_mean(x, group, valid & known, n_groups)
        rows = np.arange(x.shape[0])[:, None]
        own_mean, own_count = mean[rows, group], count[rows, group]
        common = np.where(known & (own_count >= MIN_GROUP_CODES), own_mean, common)
    return dataclasses.replace(returns, log_returns=x - common)


def trailing_std(x: np.ndarray, window: int, min_count: int = 2) -> np.ndarray:
    """Sample std (ddof=1) of each column of ``x [T, N]`` over rows t−window+1 … t, NaNs skipped.

    NaN where fewer than ``min_count`` values are finite; exactly 0 where the values are equal up
    to rounding (:func:`trailing_flat`; ``x`` holds logs). Running sums, so O(T·N).
    """
    finite = np.isfinite(x)
    values = np.where(finite, x, 0.0)

    def rolling(a: np.ndarray) -> np.ndarray:
        total = np.cumsum(a, axis=0)
        total[window:] -= total[:-window].copy()
        return total

    n, s, q = rolling(finite.astype(np.float64)), rolling(values), rolling(values * values)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (q - s * s / n) / (n - 1)
    var = np.where(trailing_flat(x, window), 0.0, np.maximum(var, 0.0))
    return np.where(n >= min_count, np.sqrt(var), np.nan)


def winsorize_returns(returns: ReturnPanel, limit: float | None, window: int) -> ReturnPanel:
    """Each return clipped to ± ``limit`` × the code's std over the ``window`` days before it.

    Earnings jumps and fat tails otherwise dominate a correlation over a few hundred days. The
    std of day t uses days t−window … t−1 only (point in time); a code with fewer than 20 earlier
    returns in the window is left unclipped. ``limit`` None returns the panel unchanged.
    """
    if limit is None:
        return returns
    if limit <= 0:
        raise ValueError(f"params:graph.winsorize must be > 0 standard deviations, got {limit}")
    x = returns.log_returns
    before = np.full(x.shape, np.nan)
    before[1:] = trailing_std(x, window, min_count=20)[:-1]
    bound = limit * before
    clipped = np.where(np.isfinite(bound), np.clip(x, -bound, bound), x)
    return dataclasses.replace(returns, log_returns=clipped)
