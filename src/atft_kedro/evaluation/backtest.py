"""Cost-aware long-short backtest of a daily prediction table.

Universe on day t: stocks with a finite prediction and a finite target for the horizon (the
evaluable cross-section; a stock whose future price is unknown cannot be scored). Days with fewer
than ``min_stocks`` such stocks hold no position.

Weights (dollar-neutral, unit gross exposure: long side sums to +0.5, short side to −0.5, so a
return is per unit of gross capital; the usual "top minus bottom" spread is twice this):

* ``quantile``: equal weight in the top and bottom ``⌊quantile·n⌋`` stocks by prediction
  (at least 1, at most ⌊n/2⌋ per side; ties broken by Code).
* ``jpx``: the JPX Tokyo Stock Exchange Prediction (Kaggle, 2022) rule: the top and bottom
  ``m = min(top_n, ⌊n/2⌋)`` stocks by rank, raw weights ``linspace(2, 1, m)`` from the most extreme
  stock inward, normalised per side. The competition scored ``Σ r·w / mean(w)`` per side, i.e.
  ``2·m`` times our return; its Sharpe (mean/std of daily spreads, not annualised) is unchanged by
  that scale and is reported here as ``daily_sharpe``.

Returns and costs: gross(t) = Σ_i w_i(t)·r_i(t); turnover(t) = Σ_i |w_i(t) − w_i(t−1)| with target
(not price-drifted) weights — drift within a day is second order for a daily rebalance — and
w(−1) = 0, so the first day pays to enter; cost(t) = cost_bps·1e-4·turnover(t); net = gross − cost.

Horizons h > 1 (``horizon`` > 1):

* with ``daily_target_col`` (the 1-day return): **overlapping sleeves** (Jegadeesh–Titman). Each
  day a sleeve with 1/h of the capital is formed from ``pred_{h}d`` and held h days; the book on day
  t is (1/h)·Σ_{j<h} w(t−j), earning the 1-day returns (a missing 1-day return contributes 0). The
  first h−1 days are partly invested. 252 periods per year.
* without it: **non-overlapping** rebalancing every h-th prediction date, earning the h-day target;
  252/h periods per year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.evaluation.metrics import ranked_cross_sections
from atft_kedro.evaluation.predictions import require_columns

TRADING_DAYS = 252


@dataclass(frozen=True)
class Backtest:
    """One long-short backtest: ``daily`` has Date, gross, turnover, cost, net, n_long, n_short."""

    daily: pl.DataFrame
    periods_per_year: float
    scheme: str
    horizon: int
    method: str  # "daily" | "overlapping_sleeves" | "non_overlapping"


def portfolio_weights(
    preds: pl.DataFrame,
    pred_col: str,
    target_col: str,
    *,
    scheme: str = "quantile",
    quantile: float = 0.1,
    top_n: int = 200,
    min_stocks: int = 10,
) -> pl.DataFrame:
    """Target weights per day → DataFrame[Date, Code, weight] (only non-zero weights)."""
    if scheme not in ("quantile", "jpx"):
        raise ValueError(f"long_short_returns: scheme must be 'quantile' or 'jpx', got {scheme!r}")
    ranked = ranked_cross_sections(
        preds, pred_col, target_col, max(min_stocks, 2), descending=True
    ).with_columns(r_short=pl.col("n") + 1 - pl.col("r"))  # 1 = lowest prediction
    if scheme == "quantile":
        k = pl.max_horizontal((pl.col("n") * quantile).floor(), 1).clip(
            upper_bound=pl.col("n") // 2
        )
        side_w = 0.5 / k
        weight = (
            pl.when(pl.col("r") <= k)
            .then(side_w)
            .when(pl.col("r_short") <= k)
            .then(-side_w)
            .otherwise(0.0)
        )
    else:
        m = pl.min_horizontal(pl.lit(top_n), pl.col("n") // 2).cast(pl.Float64)
        step = pl.when(m > 1).then(1.0 / (m - 1)).otherwise(0.0)
        # raw weight 2 → 1 from the extreme inward; Σ raw = 1.5·m per side
        raw_long = 2.0 - (pl.col("r") - 1) * step
        raw_short = 2.0 - (pl.col("r_short") - 1) * step
        weight = (
            pl.when(pl.col("r") <= m)
            .then(0.5 * raw_long / (1.5 * m))
            .when(pl.col("r_short") <= m)
            .then(-0.5 * raw_short / (1.5 * m))
            .otherwise(0.0)
        )
    return ranked.select("Date", "Code", weight=weight).filter(pl.col("weight") != 0.0)


def dense_grid(
    table: pl.DataFrame, value: str, dates: pl.DataFrame, codes: pl.DataFrame, fill: float
) -> np.ndarray:
    """Scatter (Date, Code, value) into a [T, N] array on the given grids (``dates``: Date, t;
    ``codes``: Code, i; rows off the grids are dropped)."""
    out = np.full((dates.height, codes.height), fill, dtype=np.float64)
    idx = table.join(dates, on="Date").join(codes, on="Code")
    out[idx["t"].to_numpy(), idx["i"].to_numpy()] = idx[value].cast(pl.Float64).to_numpy()
    return out


def long_short_returns(
    preds: pl.DataFrame,
    pred_col: str,
    target_col: str,
    *,
    scheme: str = "quantile",
    quantile: float = 0.1,
    top_n: int = 200,
    cost_bps: float = 10.0,
    horizon: int = 1,
    daily_target_col: str | None = None,
    min_stocks: int = 10,
) -> Backtest:
    """Daily-rebalanced long-short portfolio from predictions (see the module docstring)."""
    weights = portfolio_weights(
        preds,
        pred_col,
        target_col,
        scheme=scheme,
        quantile=quantile,
        top_n=top_n,
        min_stocks=min_stocks,
    )
    dates = preds.select(pl.col("Date").unique().sort()).with_row_index("t")
    if horizon > 1 and daily_target_col is None:
        method, returns_col, periods = "non_overlapping", target_col, TRADING_DAYS / horizon
        dates = dates.filter(pl.col("t") % horizon == 0).drop("t").with_row_index("t")
    else:
        method = "daily" if horizon == 1 else "overlapping_sleeves"
        returns_col, periods = (daily_target_col or target_col), TRADING_DAYS
    require_columns(preds, (returns_col,))
    codes = preds.select(pl.col("Code").unique().sort()).with_row_index("i")
    w = dense_grid(weights, "weight", dates, codes, 0.0)  # [T, N]
    r = dense_grid(preds.select("Date", "Code", returns_col), returns_col, dates, codes, np.nan)
    if method == "overlapping_sleeves":
        csum = np.cumsum(w, axis=0)
        csum[horizon:] -= csum[:-horizon].copy()
        w = csum / horizon  # book = mean of the last h sleeves (missing sleeves count as cash)
    return Backtest(book_daily(w, r, dates, cost_bps), periods, scheme, horizon, method)


def book_daily(w: np.ndarray, r: np.ndarray, dates: pl.DataFrame, cost_bps: float) -> pl.DataFrame:
    """Daily Date, gross, turnover, cost, net, n_long, n_short of the book ``w`` [T, N] (weights
    held on day t) earning ``r`` [T, N] (NaN: no return, contributes 0); w(−1) = 0."""
    gross = np.nansum(w * np.where(np.isfinite(r), r, 0.0), axis=1)
    turnover = np.abs(np.diff(w, axis=0, prepend=np.zeros((1, w.shape[1])))).sum(axis=1)
    cost = cost_bps * 1e-4 * turnover
    return dates.select("Date").with_columns(
        gross=pl.Series(gross),
        turnover=pl.Series(turnover),
        cost=pl.Series(cost),
        net=pl.Series(gross - cost),
        n_long=pl.Series((w > 0).sum(axis=1), dtype=pl.Int64),
        n_short=pl.Series((w < 0).sum(axis=1), dtype=pl.Int64),
    )


def return_stats(returns: np.ndarray, periods_per_year: float = TRADING_DAYS) -> dict[str, float]:
    """Statistics of a per-period return series r_1..r_n.

    annual_return = mean·P (arithmetic); annual_vol = std·√P (ddof=1); sharpe = mean/std·√P
    (risk-free rate 0: the book is dollar-neutral); daily_sharpe = mean/std (per period, the JPX
    competition's figure); max_drawdown = max_t (1 − V_t / max_{s≤t} V_s) on V = Π(1 + r), V_0 = 1.
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = r.size
    mean = float(r.mean()) if n else math.nan
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    daily_sharpe = mean / std if n > 1 and std > 0 else math.nan
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    drawdown = 1.0 - wealth / np.maximum.accumulate(wealth)
    return {
        "annual_return": mean * periods_per_year,
        "annual_vol": std * math.sqrt(periods_per_year),
        "sharpe": daily_sharpe * math.sqrt(periods_per_year),
        "daily_sharpe": daily_sharpe,
        "max_drawdown": float(drawdown.max()) if n else math.nan,
        "n_days": int(n),
    }


def performance(backtest: Backtest) -> dict[str, dict[str, float]]:
    """``{"gross": stats, "net": stats}``, each with ``avg_turnover`` (mean Σ|Δw| per period)."""
    avg_turnover = float(backtest.daily["turnover"].mean()) if backtest.daily.height else math.nan  # type: ignore[arg-type]
    return {
        kind: return_stats(backtest.daily[kind].to_numpy(), backtest.periods_per_year)
        | {"avg_turnover": avg_turnover}
        for kind in ("gross", "net")
    }
