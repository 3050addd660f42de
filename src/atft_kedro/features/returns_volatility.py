"""Bar preparation, returns and volatility: per-Code windows over the code's trading rows.

The frame must be sorted by (Code, Date). ``prepare_bars`` adds the cleaned bar the other families
use: ``c`` (close, forward-filled over zero-volume days), ``o, h, l`` (the bar's envelope; missing if
any price is missing or non-positive), ``v, tv`` (volume, turnover), ``r`` (simple) and ``lr`` (log)
1-day returns, and two bookkeeping columns: ``_code`` (an integer id per code) and ``_row`` (the
row's 0-based position within its code).

Windows and lags run over the whole column in one vectorised pass, not code by code: on
(Code, Date)-sorted rows a trailing window of ``w`` rows stays inside the code exactly when
``_row >= w - 1`` (a lag of ``k`` rows when ``_row >= k``), so rows whose window would reach into
the previous code are nulled, which is what a per-code window (null until full) gives. Only the
recursive EWMs, whose state would carry across codes, run per code (``.over(_code)``).

Families return ``Stages``: lists of expressions in dependency order, each stage free to use the
columns of earlier ones. Polars does not share rolling windows between expressions (its
common-subexpression elimination skips them), so a window needed more than once is computed once,
as a ``_``-prefixed helper column in an earlier stage.
"""

from __future__ import annotations

import math

import polars as pl

BY = "Code"
CODE = "_code"
ROW = "_row"

Stages = list[list[pl.Expr]]


def merge_stages(*families: Stages) -> Stages:
    """Stage k of every family side by side (evaluated in one pass), each output name once."""
    merged: list[dict[str, pl.Expr]] = []
    for stages in families:
        for k, stage in enumerate(stages):
            if k == len(merged):
                merged.append({})
            for expr in stage:
                merged[k].setdefault(expr.meta.output_name(), expr)
    return [list(stage.values()) for stage in merged]


def positive(name: str) -> pl.Expr:
    """The column where strictly positive, else null."""
    return pl.when(pl.col(name) > 0).then(pl.col(name))


def lag(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` k trading rows earlier of the same code."""
    return pl.when(pl.col(ROW) >= k).then(expr.shift(k))


def lead(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` k trading rows later of the same code (labels only, never an input)."""
    return pl.when(pl.col(CODE).shift(-k) == pl.col(CODE)).then(expr.shift(-k))


def _full(window: int, rolled: pl.Expr) -> pl.Expr:
    """``rolled`` (a whole-column trailing window) where the window lies inside the row's code."""
    return pl.when(pl.col(ROW) >= window - 1).then(rolled)


def sma(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing mean over the code's last ``window`` rows (null until the window is full)."""
    return _full(window, expr.rolling_mean(window, min_samples=window))


def rolling_std(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing sample standard deviation (ddof=1) over the code's last ``window`` rows."""
    return _full(window, expr.rolling_std(window, min_samples=window))


def rolling_max(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing maximum over the code's last ``window`` rows."""
    return _full(window, expr.rolling_max(window, min_samples=window))


def rolling_min(expr: pl.Expr, window: int) -> pl.Expr:
    """Trailing minimum over the code's last ``window`` rows."""
    return _full(window, expr.rolling_min(window, min_samples=window))


def ema(expr: pl.Expr, span: int) -> pl.Expr:
    """Exponential moving average, alpha = 2/(span+1), null until ``span`` observations."""
    return expr.ewm_mean(span=span, adjust=False, min_samples=span, ignore_nulls=True).over(CODE)


def wilder(expr: pl.Expr, n: int) -> pl.Expr:
    """Wilder's smoothing (alpha = 1/n), null until ``n`` observations."""
    return expr.ewm_mean(alpha=1.0 / n, adjust=False, min_samples=n, ignore_nulls=True).over(CODE)


def code_rows(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``_code`` (run id of each code's block of rows) and ``_row`` (position in the block)."""
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = (pl.col(BY) != pl.col(BY).shift(1)).fill_null(True)
    return frame.with_columns(
        _code=starts.cum_sum().cast(pl.Int32).set_sorted(),  # whole codes, in order
        _row=(i - pl.when(starts).then(i).forward_fill()).cast(pl.Int32),
    )


def prepare_bars(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``_code, _row`` and the cleaned bar columns ``c, o, h, l, v, tv, r, lr``."""
    prices = ["open", "high", "low", "close"]
    bar_ok = pl.all_horizontal([pl.col(p).is_not_null() & (pl.col(p) > 0) for p in prices])
    # Forward fill over the whole column, kept only where the filled-from row is of the same code.
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    filled_from = pl.when(positive("close").is_not_null()).then(i).forward_fill()
    return (
        code_rows(frame)
        .with_columns(
            c=pl.when(filled_from >= i - pl.col(ROW)).then(positive("close").forward_fill()),
            o=pl.when(bar_ok).then(pl.col("open")),
            h=pl.when(bar_ok).then(pl.max_horizontal(prices)),
            l=pl.when(bar_ok).then(pl.min_horizontal(prices)),
            v=pl.col("volume").cast(pl.Float64),
            tv=pl.col("turnover").cast(pl.Float64),
        )
        .with_columns(
            r=pl.col("c") / lag(pl.col("c"), 1) - 1.0,
            lr=(pl.col("c") / lag(pl.col("c"), 1)).log(),
        )
    )


def returns_exprs() -> Stages:
    """Family ``returns``: simple returns over 1..120 rows and log returns."""
    c = pl.col("c")
    out = [(c / lag(c, h) - 1.0).alias(f"ret_{h}d") for h in (1, 5, 10, 20, 60, 120)]
    out += [(c / lag(c, h)).log().alias(f"log_ret_{h}d") for h in (1, 5, 20)]
    return [out]


def volatility_exprs() -> Stages:
    """Family ``volatility``: close-to-close and Parkinson (high-low) volatility, daily units."""
    lr = pl.col("lr")
    hl2 = (pl.col("h") / pl.col("l")).log().pow(2) / (4.0 * math.log(2.0))
    out = [rolling_std(lr, w).alias(f"vol_{w}d") for w in (5, 10, 20, 60)]
    # running-sum windows can end a hair below 0 on a flat stretch; the variance is >= 0
    out += [sma(hl2, w).clip(lower_bound=0.0).sqrt().alias(f"parkinson_vol_{w}d") for w in (5, 20)]
    return [out, [(pl.col("vol_5d") / pl.col("vol_20d")).alias("vol_ratio_5_20")]]
