"""Cross-sectional normalisation: each feature scored against the whole universe on the same Date.

``zscore``: ``(x - mean_d(x)) / std_d(x)`` clipped to ``[-clip, clip]``; ``rank_gauss``: the average
rank among the date's finite values mapped to a standard normal quantile, ``Phi^-1((rank - 0.5)/n)``,
clipped likewise. Missing values stay missing and do not count. A date with fewer than two finite
values, or no spread, has no score (null) rather than a fake 0.
"""

from __future__ import annotations

import polars as pl
from scipy.special import ndtri

CS_METHODS = ("zscore", "rank_gauss", "none")


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
            sd = x.std().over("Date")
            score = (x - x.mean().over("Date")) / sd
            score = pl.when((n >= 2) & (sd > 0)).then(score)
        else:
            p = (x.rank("average").over("Date") - 0.5) / n
            spread = (x.max() - x.min()).over("Date")
            score = pl.when((n >= 2) & (spread > 0)).then(p.map_batches(_ndtri, pl.Float64))
        out.append(score.clip(-clip, clip).alias(name))
    return out
