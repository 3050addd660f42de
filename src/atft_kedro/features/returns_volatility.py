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

Rounding. A rolling mean keeps a running sum that carries rounding residue down the column, from
the code's earlier rows and from every row of the codes before it, later dates included. On a
window whose values are all equal (a price that did not move for weeks, so returns of exactly 0)
that residue is all there is: ``E[x²] − E[x]²`` is noise of either sign and ``var > 0`` flips with
data the window never saw. So a variance, a spread or a count of distinct values is compared with
a tolerance relative to the data's scale (:func:`negligible`), never with 0: a window whose values
are equal up to that tolerance (:func:`flat`, counted exactly) has a standard deviation, variance
and covariance of exactly 0, and, where its mean divides or is square-rooted, a mean equal to its
value. A flag that flips on rounding noise changes every cross-sectional z-score of that day.
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


#: Relative size of rounding: a spread at most this fraction of the data's scale is no spread.
#: Far above float64 rounding (~1e-16, or the residue of a running sum), far below any real
#: difference (a tick is ~1e-5 of a price; float32 features resolve 6e-8).
SPREAD_RTOL = 1e-9


def negligible(spread, scale, rtol: float = SPREAD_RTOL):
    """Whether ``spread`` (a range, a standard deviation, a step) is rounding noise next to
    ``scale`` (the data's magnitude, same units): ``spread <= rtol * scale``.

    Plain arithmetic, so it takes polars expressions, numpy arrays and torch tensors alike. A
    spread of exactly 0 is negligible even on a scale of 0.
    """
    return spread <= rtol * scale


def flat(expr: pl.Expr, window: int, floor: float = 0.0) -> pl.Expr:
    """True where the code's last ``window`` values are one value up to rounding (null until the
    window is full): no step from one value to the next is more than :func:`negligible` of the
    value's magnitude plus ``floor`` (1 for returns, a price ratio minus 1: their rounding is
    relative to 1, so a return of 1e-16 is a price that did not move).

    The steps are counted with an exact integer rolling sum, so unlike a variance from running
    sums this does not depend on the rows before the window.
    """
    prev = expr.shift(1)
    step = (~negligible((expr - prev).abs(), expr.abs() + floor)).cast(pl.Int32)
    return _full(window, step.rolling_sum(window - 1, min_samples=window - 1)) == 0


def sma(expr: pl.Expr, window: int, exact_if_flat: bool = False) -> pl.Expr:
    """Trailing mean over the code's last ``window`` rows (null until the window is full).

    ``exact_if_flat``: on a :func:`flat` window, the row's own value. For a mean that divides or
    is square-rooted: on a window of zeros (no volume, no bar range) the running sum's residue
    would otherwise become the value.
    """
    mean = _full(window, expr.rolling_mean(window, min_samples=window))
    return pl.when(flat(expr, window)).then(expr).otherwise(mean) if exact_if_flat else mean


def rolling_std(expr: pl.Expr, window: int, floor: float = 0.0) -> pl.Expr:
    """Trailing sample standard deviation (ddof=1) over the code's last ``window`` rows; exactly
    0 on a :func:`flat` window (``floor`` as there)."""
    std = _full(window, expr.rolling_std(window, min_samples=window))
    return pl.when(flat(expr, window, floor)).then(0.0).otherwise(std)


def covariance(mean_xy: pl.Expr, mean_x: pl.Expr, mean_y: pl.Expr, no_spread: pl.Expr) -> pl.Expr:
    """Population covariance ``E[xy] − E[x]E[y]`` from trailing means; exactly 0 where
    ``no_spread`` (x or y :func:`flat` over the window), where the difference is rounding."""
    return pl.when(no_spread).then(0.0).otherwise(mean_xy - mean_x * mean_y)


def variance(mean_sq: pl.Expr, mean: pl.Expr, no_spread: pl.Expr) -> pl.Expr:
    """Population variance ``E[x²] − E[x]²`` from trailing means: exactly 0 where ``no_spread``
    (x :func:`flat` over the window), never below 0."""
    return covariance(mean_sq, mean, mean, no_spread).clip(lower_bound=0.0)


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
    out = [rolling_std(lr, w, floor=1.0).alias(f"vol_{w}d") for w in (5, 10, 20, 60)]
    # a mean of squares is >= 0, and exactly 0 over bars with h = l
    out += [
        sma(hl2, w, exact_if_flat=True).clip(lower_bound=0.0).sqrt().alias(f"parkinson_vol_{w}d")
        for w in (5, 20)
    ]
    return [out, [(pl.col("vol_5d") / pl.col("vol_20d")).alias("vol_ratio_5_20")]]
