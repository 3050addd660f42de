"""Bar preparation, returns and volatility: per-Code windows over the code's trading rows.

The frame must be sorted by (Code, Date). ``prepare_bars`` adds the cleaned bar the other families
use: ``c`` (close, forward-filled over zero-volume days), ``o, h, l`` (the bar's envelope; missing if
any price is missing or non-positive), ``v, tv`` (volume, turnover), ``r`` (simple) and ``lr`` (log)
1-day returns.
"""

from __future__ import annotations

import math

import polars as pl

BY = "Code"


def positive(name: str) -> pl.Expr:
    """The column where strictly positive, else null."""
    return pl.when(pl.col(name) > 0).then(pl.col(name))


def lag(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` k trading rows earlier of the same code."""
    return expr.shift(k).over(BY)


def sma(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing mean over the code's last ``window`` rows (null until the window is full)."""
    return expr.rolling_mean(window, min_samples=window).over(BY)


def rolling_std(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing sample standard deviation (ddof=1) over the code's last ``window`` rows."""
    return expr.rolling_std(window, min_samples=window).over(BY)


def ema(expr: pl.Expr, span: int) -> pl.Expr:
    """Exponential moving average, alpha = 2/(span+1), null until ``span`` observations."""
    return expr.ewm_mean(span=span, adjust=False, min_samples=span, ignore_nulls=True).over(BY)


def wilder(expr: pl.Expr, n: int) -> pl.Expr:
    """Wilder's smoothing (alpha = 1/n), null until ``n`` observations."""
    return expr.ewm_mean(alpha=1.0 / n, adjust=False, min_samples=n, ignore_nulls=True).over(BY)


def prepare_bars(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Add the cleaned bar columns ``c, o, h, l, v, tv, r, lr`` (see module docstring)."""
    prices = ["open", "high", "low", "close"]
    bar_ok = pl.all_horizontal([pl.col(p).is_not_null() & (pl.col(p) > 0) for p in prices])
    return frame.with_columns(
        c=positive("close").forward_fill().over(BY),
        o=pl.when(bar_ok).then(pl.col("open")),
        h=pl.when(bar_ok).then(pl.max_horizontal(prices)),
        l=pl.when(bar_ok).then(pl.min_horizontal(prices)),
        v=pl.col("volume").cast(pl.Float64),
        tv=pl.col("turnover").cast(pl.Float64),
    ).with_columns(
        r=pl.col("c") / lag(pl.col("c"), 1) - 1.0,
        lr=(pl.col("c") / lag(pl.col("c"), 1)).log(),
    )


def returns_exprs() -> list[pl.Expr]:
    """Family ``returns``: simple returns over 1..120 rows and log returns."""
    c = pl.col("c")
    out = [(c / lag(c, h) - 1.0).alias(f"ret_{h}d") for h in (1, 5, 10, 20, 60, 120)]
    out += [(c / lag(c, h)).log().alias(f"log_ret_{h}d") for h in (1, 5, 20)]
    return out


def volatility_exprs() -> list[pl.Expr]:
    """Family ``volatility``: close-to-close and Parkinson (high-low) volatility, daily units."""
    lr = pl.col("lr")
    hl2 = (pl.col("h") / pl.col("l")).log().pow(2) / (4.0 * math.log(2.0))
    out = [rolling_std(lr, w).alias(f"vol_{w}d") for w in (5, 10, 20, 60)]
    # running-sum windows can end a hair below 0 on a flat stretch; the variance is >= 0
    out += [sma(hl2, w).clip(lower_bound=0.0).sqrt().alias(f"parkinson_vol_{w}d") for w in (5, 20)]
    out.append((rolling_std(lr, 5) / rolling_std(lr, 20)).alias("vol_ratio_5_20"))
    return out
