"""Moving-average gaps, range and volume, and classic technical indicators (per-Code windows).

Expects the bar columns of ``returns_volatility.prepare_bars`` on a frame sorted by (Code, Date).
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.returns_volatility import (
    CODE,
    Stages,
    ema,
    lag,
    negligible,
    rolling_max,
    rolling_min,
    rolling_std,
    sma,
    wilder,
)


def close_sma(window: int) -> pl.Expr:
    """Helper column ``_sma_c_<window>``: SMA of the close (shared by several features)."""
    return sma(pl.col("c"), window).alias(f"_sma_c_{window}")


def ma_gap_exprs() -> Stages:
    """Family ``ma_gap``: close relative to its simple / exponential moving averages."""
    c = pl.col("c")
    s5, s20, s60 = (pl.col(f"_sma_c_{w}") for w in (5, 20, 60))
    out = [(c / pl.col(f"_sma_c_{w}") - 1.0).alias(f"sma_gap_{w}") for w in (5, 20, 60)]
    out += [(c / ema(c, s) - 1.0).alias(f"ema_gap_{s}") for s in (5, 10, 20, 60)]
    out.append((s5 / s20 - 1.0).alias("sma_cross_5_20"))
    out.append((s20 / s60 - 1.0).alias("sma_cross_20_60"))
    return [[close_sma(w) for w in (5, 20, 60)], out]


def range_volume_exprs() -> Stages:
    """Family ``range_volume``: where the close sits in the bar, the opening gap, activity ratios."""
    c, o, h, low = pl.col("c"), pl.col("o"), pl.col("h"), pl.col("l")
    v, tv = pl.col("v"), pl.col("tv")
    return [
        [
            ((h - low) / c).alias("hl_range"),
            (c / h - 1.0).alias("close_to_high"),
            (c / low - 1.0).alias("close_to_low"),
            # a bar whose high and low differ by rounding has no range: mid-bar
            pl.when(negligible(h - low, h))
            .then(0.5)
            .when(h > low)
            .then((c - low) / (h - low))
            .alias("close_position"),
            (o / lag(c, 1) - 1.0).alias("gap_open"),
            # exact means: days without trades give 0 / 0 (no ratio), not 0 / residue
            (v / sma(v, 5, exact_if_flat=True)).alias("volume_ratio_5"),
            (v / sma(v, 20, exact_if_flat=True)).alias("volume_ratio_20"),
            tv.log1p().alias("log_turnover"),
            (tv / sma(tv, 20, exact_if_flat=True)).alias("turnover_ratio_20"),
        ]
    ]


def _rsi(n: int) -> pl.Expr:
    up, down = pl.col(f"_up_{n}"), pl.col(f"_down_{n}")
    # A code whose price did not move over the window has U = D = 0: neutral, not undefined.
    return pl.when(up + down > 0).then(up / (up + down)).when(up + down == 0).then(0.5)


def technical_exprs() -> Stages:
    """Family ``technicals``: RSI, MACD histogram, Bollinger %b/width, ATR, stochastic %K."""
    c, h, low = pl.col("c"), pl.col("h"), pl.col("l")
    prev = lag(c, 1)
    dc = c - prev
    true_range = pl.max_horizontal(h - low, (h - prev).abs(), (low - prev).abs())
    true_range = pl.when(prev.is_not_null() & h.is_not_null()).then(true_range)
    windows = [
        close_sma(20),
        rolling_std(c, 20).alias("_std_c_20"),
        (ema(c, 12) - ema(c, 26)).alias("_macd"),
        rolling_max(h, 14).alias("_hi_14"),
        rolling_min(low, 14).alias("_lo_14"),
    ]
    smoothed = [
        pl.col("_macd")
        .ewm_mean(span=9, adjust=False, min_samples=9, ignore_nulls=True)
        .over(CODE)
        .alias("_signal"),
        wilder(true_range, 14).alias("_atr_14"),
    ]
    for n in (2, 14):
        smoothed.append(wilder(dc.clip(lower_bound=0.0), n).alias(f"_up_{n}"))
        smoothed.append(wilder((-dc).clip(lower_bound=0.0), n).alias(f"_down_{n}"))
    mid, sd = pl.col("_sma_c_20"), pl.col("_std_c_20")
    hi14, lo14 = pl.col("_hi_14"), pl.col("_lo_14")
    features = [
        _rsi(2).alias("rsi_2"),
        _rsi(14).alias("rsi_14"),
        ((pl.col("_macd") - pl.col("_signal")) / c).alias("macd_hist"),
        # sd is exactly 0 on a flat window (rolling_std), so "no band" is an exact test
        pl.when(sd > 0).then((c - mid + 2.0 * sd) / (4.0 * sd)).alias("bb_pct_b_20"),
        (4.0 * sd / mid).alias("bb_width_20"),
        (pl.col("_atr_14") / c).alias("atr_14"),
        pl.when(~negligible(hi14 - lo14, hi14))
        .then((c - lo14) / (hi14 - lo14))
        .alias("stoch_k_14"),
    ]
    return [windows, smoothed, features]
