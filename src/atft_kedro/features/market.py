"""Market-wide features (TOPIX or a derived index) and stock x market features.

``market_frame`` works on the trading calendar (one row per date); its features are identical for
every stock on a date. ``stock_market_exprs`` relate each stock's return ``r`` to the market return
``m`` over the code's trailing 60 rows.
"""

from __future__ import annotations

import logging

import polars as pl

from atft_kedro.features.returns_volatility import (
    BY,
    Stages,
    covariance,
    flat,
    lag,
    sma,
    variance,
)

log = logging.getLogger(__name__)

BETA_WINDOW = 60


def market_index(
    calendar: pl.DataFrame, topix: pl.DataFrame | None, stock_returns: pl.LazyFrame
) -> pl.DataFrame:
    """The market index ``M`` on each trading date, and whether it is TOPIX.

    Args:
        calendar: one column ``Date``, the sorted trading dates.
        topix: optional TOPIX table (Date, Close, ...). Its close is forward-filled over panel dates
            it lacks.
        stock_returns: (Date, r) rows of the panel; used only when ``topix`` is None, to build an
            equal-weight index ``M_t = prod_{s<=t} (1 + mean_i r_{i,s})`` (M = 1 on the first date).

    Returns:
        (Date, M, is_topix_valid) with one row per calendar date.
    """
    if topix is not None and topix.height > 0:
        close = topix.select(
            pl.col("Date").cast(pl.Date), pl.col("Close").cast(pl.Float64).alias("M")
        ).filter(pl.col("M") > 0)
        index = calendar.join(
            close.unique("Date", keep="last"), on="Date", how="left", maintain_order="left"
        )
        return index.with_columns(pl.col("M").forward_fill(), is_topix_valid=pl.lit(1, pl.Int8))
    log.warning("no TOPIX table: market features use an equal-weight index of the panel")
    mean_r = stock_returns.group_by("Date").agg(pl.col("r").mean().alias("mean_r")).collect()
    index = calendar.join(mean_r, on="Date", how="left", maintain_order="left").sort("Date")
    return index.select(
        "Date",
        M=(1.0 + pl.col("mean_r").fill_null(0.0)).cum_prod(),
        is_topix_valid=pl.lit(0, pl.Int8),
    )


def market_frame(index: pl.DataFrame) -> pl.DataFrame:
    """Family ``market`` on the calendar: (Date, m, is_topix_valid, mkt_* features)."""
    m_close = pl.col("M")
    m = m_close / m_close.shift(1) - 1.0
    frame = index.sort("Date").with_columns(m=m)
    vol20 = pl.col("m").rolling_std(20, min_samples=20)
    vol60 = pl.col("m").rolling_std(60, min_samples=60)
    sma60 = m_close.rolling_mean(60, min_samples=60)
    return frame.with_columns(
        mkt_ret_1d=pl.col("m"),
        mkt_ret_5d=m_close / m_close.shift(5) - 1.0,
        mkt_ret_20d=m_close / m_close.shift(20) - 1.0,
        mkt_ret_60d=m_close / m_close.shift(60) - 1.0,
        mkt_vol_20d=vol20,
        mkt_vol_60d=vol60,
        mkt_trend_20_60=m_close.rolling_mean(20, min_samples=20) / sma60 - 1.0,
        mkt_drawdown_60=m_close / m_close.rolling_max(60, min_samples=60) - 1.0,
        mkt_bull_regime=pl.when(sma60.is_not_null()).then((m_close > sma60).cast(pl.Float64)),
        mkt_high_vol_regime=pl.when(vol60.is_not_null()).then((vol20 > vol60).cast(pl.Float64)),
    ).drop("M")


def stock_market_exprs() -> Stages:
    """Family ``stock_market``: 60-row beta, correlation, alpha, relative strength, idio vol.

    Moments are population moments over the code's last 60 rows where both ``r`` and ``m`` exist
    (the ddof cancels in beta and correlation). A series that is flat over the window (a price
    that did not move: returns of exactly 0) has a variance and a covariance of exactly 0, not
    the running sums' rounding residue: such a stock has beta 0, idiosyncratic vol 0 and no
    correlation, whatever the rows before its window.
    """
    r, m, w = pl.col("r"), pl.col("m"), BETA_WINDOW
    means = [
        sma(r, w).alias("_mean_r"),
        sma(m, w).alias("_mean_m"),
        sma(r * r, w).alias("_mean_rr"),
        sma(m * m, w).alias("_mean_mm"),
        sma(r * m, w).alias("_mean_rm"),
        flat(r, w, floor=1.0).alias("_flat_r"),
        flat(m, w, floor=1.0).alias("_flat_m"),
    ]
    mean_r, mean_m = pl.col("_mean_r"), pl.col("_mean_m")
    flat_r, flat_m = pl.col("_flat_r"), pl.col("_flat_m")
    moments = [
        variance(pl.col("_mean_rr"), mean_r, flat_r).alias("_var_r"),
        variance(pl.col("_mean_mm"), mean_m, flat_m).alias("_var_m"),
        covariance(pl.col("_mean_rm"), mean_r, mean_m, flat_r | flat_m).alias("_cov"),
    ]
    var_r, var_m, cov = pl.col("_var_r"), pl.col("_var_m"), pl.col("_cov")
    beta = pl.when(var_m > 0).then(cov / var_m)
    ret5 = pl.col("c") / lag(pl.col("c"), 5) - 1.0
    ret20 = pl.col("c") / lag(pl.col("c"), 20) - 1.0
    features = [
        beta.alias("beta_60d"),
        pl.when((var_m > 0) & (var_r > 0)).then(cov / (var_r * var_m).sqrt()).alias("corr_mkt_60d"),
        (r - beta * m).alias("beta_resid_1d"),
        (ret20 - beta * pl.col("mkt_ret_20d")).alias("beta_resid_20d"),
        (ret5 - pl.col("mkt_ret_5d")).alias("rel_strength_5d"),
        (ret20 - pl.col("mkt_ret_20d")).alias("rel_strength_20d"),
        (var_r - beta * beta * var_m).clip(lower_bound=0.0).sqrt().alias("idio_vol_60d"),
    ]
    return [means, moments, features]


__all__ = ["BY", "market_frame", "market_index", "stock_market_exprs"]
