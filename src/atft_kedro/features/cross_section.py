"""Cross-sectional normalisation: each feature scored against the whole universe on the same Date.

``zscore``: ``(x - mean_d(x)) / std_d(x)`` clipped to ``[-clip, clip]``; ``rank_gauss``: the average
rank among the date's finite values mapped to a standard normal quantile, ``Phi^-1((rank - 0.5)/n)``,
clipped likewise. Missing values stay missing and do not count. A date with fewer than two finite
values, or no spread, has no score (null) rather than a fake 0. "No spread" is a spread within
rounding of the values' magnitude (``returns_volatility.negligible``), not a spread of exactly 0:
the standard deviation of equal values can come out at 1e-17, and scoring that noise would put
every stock of the date at an arbitrary, clipped value.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import ndtri

from atft_kedro.features.returns_volatility import negligible

CS_METHODS = ("zscore", "rank_gauss", "none")
STATS_BATCH = 8  # columns per group_by pass in ``cs_normalise``


def _ndtri(s: pl.Series) -> pl.Series:
    return pl.Series(s.name, ndtri(s.to_numpy()), dtype=pl.Float64)


def cs_normalise_exprs(columns: list[str], method: str, clip: float) -> list[pl.Expr]:
    """Per-Date normalising expressions for ``columns`` (a frame with a ``Date`` column)."""
    if method not in CS_METHODS:
        raise ValueError(f"cs_method must be one of {CS_METHODS}, got {method!r}")
    if method == "none":
        return [pl.col(c) for c in columns]
    out = []
    for name in columns:
        x = pl.col(name).cast(pl.Float64)
        n = x.count().over("Date")
        if method == "zscore":
            sd, mean = x.std().over("Date"), x.mean().over("Date")
            score = (x - mean) / sd
            score = pl.when((n >= 2) & ~negligible(sd, mean.abs() + sd)).then(score)
        else:
            p = (x.rank("average").over("Date") - 0.5) / n
            hi, lo = x.max().over("Date"), x.min().over("Date")
            spread = ~negligible(hi - lo, pl.max_horizontal(hi.abs(), lo.abs()))
            score = pl.when((n >= 2) & spread).then(p.map_batches(_ndtri, pl.Float64))
        out.append(score.clip(-clip, clip).alias(name))
    return out


def cs_normalise(frame: pl.DataFrame, columns: list[str], method: str, clip: float) -> pl.DataFrame:
    """``frame`` with the Float32 ``columns`` replaced by their per-Date scores, NaN where none.

    Same scores as ``cs_normalise_exprs`` (up to float64 rounding in the per-Date sums), for a
    frame sorted by ``Date`` whose missing values are NaN; the frame is modified in place. ``zscore`` takes every column's per-Date count, mean and standard deviation in one
    ``group_by("Date")`` and scores one column at a time against them repeated over each date's
    contiguous rows, so peak memory is the frame plus a few columns.
    """
    if method not in CS_METHODS:
        raise ValueError(f"cs_method must be one of {CS_METHODS}, got {method!r}")
    if method == "none":
        return frame
    if method == "rank_gauss":
        for expr in cs_normalise_exprs(columns, method, clip):
            name = expr.meta.output_name()
            frame = frame.with_columns(pl.col(name).fill_nan(None)).with_columns(
                expr.cast(pl.Float32).fill_null(float("nan"))
            )
        return frame
    # Flagged sorted, each date's rows are one contiguous slice (no hash grouping, no gathers).
    by_date = frame.select(pl.col("Date").set_sorted(), *columns).group_by(
        "Date", maintain_order=True
    )
    parts = [by_date.agg(pl.len().alias(":rows"))]
    for i in range(0, len(columns), STATS_BATCH):  # a few float64 copies alive at a time
        batch = columns[i : i + STATS_BATCH]
        x = [pl.col(c).fill_nan(None).cast(pl.Float64) for c in batch]
        parts.append(
            by_date.agg(
                *[v.count().alias(f"{c}:n") for v, c in zip(x, batch, strict=True)],
                *[v.mean().alias(f"{c}:mean") for v, c in zip(x, batch, strict=True)],
                *[v.std().alias(f"{c}:sd") for v, c in zip(x, batch, strict=True)],
            ).drop("Date")
        )
    stats = pl.concat(parts, how="horizontal")
    del parts
    del by_date  # it holds the unscored columns: each must be freed once its score replaces it
    day = np.repeat(np.arange(stats.height), stats[":rows"].to_numpy())  # each row's date
    # Two float64 work buffers reused by every column: no fresh pages per column.
    score, on_row = np.empty(frame.height), np.empty(frame.height)
    for name in columns:
        n = stats[f"{name}:n"].to_numpy()
        mean = stats[f"{name}:mean"].to_numpy(allow_copy=True)
        sd = stats[f"{name}:sd"].to_numpy(allow_copy=True)
        spread = (n >= 2) & ~negligible(sd, np.abs(mean) + sd)  # equal values: sd ~1e-17
        sd = np.where(spread, sd, np.nan)  # no spread: no score, not a fake 0
        np.copyto(score, frame[name].to_numpy())
        score -= np.take(mean, day, out=on_row)
        score /= np.take(sd, day, out=on_row)
        np.clip(score, -clip, clip, out=score)
        frame.replace_column(
            frame.get_column_index(name), pl.Series(name, score.astype(np.float32))
        )
    return frame
