"""Moving-average gaps, range and volume, and classic technical indicators (per-Code windows).

Expects the bar columns of ``returns_volatility.prepare_bars`` on a frame sorted by (Code, Date).
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.returns_volatility import BY, ema, lag, rolling_std, sma, wilder


def ma_gap_exprs() -> list[pl.Expr]:
    """Family ``ma_gap``: close relative to its simple / exponential moving averages."""
    c = pl.col("c")
    out = [(c / sma(c, w) - 1.0).alias(f"sma_gap_{w}") for w in (5, 20, 60)]
    out += [(c / ema(c, s) - 1.0).alias(f"ema_gap_{s}") for s in (5, 10, 20, 60)]
    out.append((sma(c, 5) / sma(c, 20) - 1.0).alias("sma_cross_5_20"))
    out.append((sma(c, 20) / sma(c, 60) - 1.0).alias("sma_cross_20_60"))
    return out


def range_volume_exprs() -> list[pl.Expr]:
    """Family ``range_volume``: where the close sits in the bar, the opening gap, activity ratios."""
    c, o, h, low = pl.col("c"), pl.col("o"), pl.col("h"), pl.col("l")
    v, tv = pl.col("v"), pl.col("tv")
    return [
        ((h - low) / c).alias("hl_range"),
        (c / h - 1.0).alias("close_to_high"),
        (c / low - 1.0).alias("close_to_low"),
        pl.when(h > low)
        .then((c - low) / (h - low))
        .when(h == low)
        .then(0.5)
        .alias("close_position"),
        (o / lag(c, 1) - 1.0).alias("gap_open"),
        (v / sma(v, 5)).alias("volume_ratio_5"),
        (v / sma(v, 20)).alias("volume_ratio_20"),
        tv.log1p().alias("log_turnover"),
        (tv / sma(tv, 20)).alias("turnover_ratio_20"),
    ]


def _rsi(n: int) -> pl.Expr:
    dc = pl.col("c") - lag(pl.col("c"), 1)
    up, down = wilder(dc.clip(lower_bound=0.0), n), wilder((-dc).clip(lower_bound=0.0), n)
    # A code whose price did not move over the window has U = D = 0: neutral, not undefined.
    return pl.when(up + down > 0).then(up / (up + down)).when(up + down == 0).then(0.5)


def technical_exprs() -> list[pl.Expr]:
    """Family ``technicals``: RSI, MACD histogram, Bollinger %b/width, ATR, stochastic %K."""
    c, h, low = pl.col("c"), pl.col("h"), pl.col("l")
    macd = ema(c, 12) - ema(c, 26)
    signal = macd.ewm_mean(span=9, adjust=False, min_samples=9, ignore_nulls=True).over(BY)
    mid, sd = sma(c, 20), rolling_std(c, 20)
    prev = lag(c, 1)
    true_range = pl.max_horizontal(h - low, (h - prev).abs(), (low - prev).abs())
    true_range = pl.when(prev.is_not_null() & h.is_not_null()).then(true_range)
    hi14 = h.rolling_max(14, min_samples=14).over(BY)
    lo14 = low.rolling_min(14, min_samples=14).over(BY)
    return [
        _rsi(2).alias("rsi_2"),
        _rsi(14).alias("rsi_14"),
        ((macd - signal) / c).alias("macd_hist"),
        ((c - mid + 2.0 * sd) / (4.0 * sd)).alias("bb_pct_b_20"),
        (4.0 * sd / mid).alias("bb_width_20"),
        (wilder(true_range, 14) / c).alias("atr_14"),
        ((c - lo14) / (hi14 - lo14)).alias("stoch_k_14"),
    ]
