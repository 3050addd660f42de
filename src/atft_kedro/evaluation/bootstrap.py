"""Stationary block bootstrap (Politis & Romano, 1994) confidence intervals over days.

A resample of a series x_0..x_{n−1} is built from blocks that start at uniform random positions and
have geometric lengths with mean ``mean_block`` (wrapping around the end). Keeping consecutive days
together preserves the serial dependence of daily IC and returns (overlapping h-day targets make
neighbouring days correlated), which an i.i.d. bootstrap would ignore and so give too-narrow
intervals. Intervals are percentile intervals of the statistic over ``n_boot`` resamples.
"""

from __future__ import annotations

import math

import numpy as np


def stationary_bootstrap_indices(
    n: int, n_boot: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """Resample indices [n_boot, n] of the stationary bootstrap (vectorised, no Python loop).

    At each position a new block starts with probability p = 1/mean_block (always at position 0);
    otherwise the index continues the previous one, i_t = (i_{t−1} + 1) mod n.
    """
    if n < 1 or mean_block < 1:
        raise ValueError(
            f"stationary bootstrap: need n ≥ 1 and mean_block ≥ 1, got {n}, {mean_block}"
        )
    starts = rng.integers(0, n, size=(n_boot, n))
    new_block = rng.random((n_boot, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    pos = np.arange(n)
    block_start = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)  # [B, n]
    first_index = np.take_along_axis(starts, block_start, axis=1)
    return (first_index + pos - block_start) % n


def _percentile_ci(stats: np.ndarray, level: float) -> tuple[float, float]:
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def _resamples(
    x: np.ndarray, n_boot: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None
    return x[stationary_bootstrap_indices(x.size, n_boot, mean_block, rng)]


def mean_ci(
    x: np.ndarray,
    mean_block: float = 10.0,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile CI for the mean of a daily series (non-finite values dropped first)."""
    samples = _resamples(x, n_boot, mean_block, rng or np.random.default_rng(0))
    if samples is None:
        return (math.nan, math.nan)
    return _percentile_ci(samples.mean(axis=1), level)


def sharpe_ci(
    returns: np.ndarray,
    periods_per_year: float = 252.0,
    mean_block: float = 10.0,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile CI for the annualised Sharpe ratio mean/std·√P of a per-period return series."""
    samples = _resamples(returns, n_boot, mean_block, rng or np.random.default_rng(0))
    if samples is None:
        return (math.nan, math.nan)
    std = samples.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, samples.mean(axis=1) / std, np.nan) * math.sqrt(periods_per_year)
    return _percentile_ci(sharpe, level)


def mean_of_means_ci(
    series: list[np.ndarray],
    mean_block: float = 10.0,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile CI for the average over independent samples (e.g. synthetic markets of several
    seeds) of each one's mean daily value: every series is resampled on its own, then the B
    resampled means are averaged across series."""
    rng = rng or np.random.default_rng(0)
    means = []
    for x in series:
        samples = _resamples(x, n_boot, mean_block, rng)
        if samples is None:
            return (math.nan, math.nan)
        means.append(samples.mean(axis=1))
    if not means:
        return (math.nan, math.nan)
    return _percentile_ci(np.mean(means, axis=0), level)


def mean_of_sharpes_ci(
    series: list[np.ndarray],
    periods_per_year: float = 252.0,
    mean_block: float = 10.0,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile CI for the average over independent samples (markets of several seeds) of each
    one's annualised Sharpe ratio: every return series is resampled on its own, then the B
    resampled Sharpe ratios are averaged across series."""
    rng = rng or np.random.default_rng(0)
    sharpes = []
    for x in series:
        samples = _resamples(x, n_boot, mean_block, rng)
        if samples is None:
            return (math.nan, math.nan)
        std = samples.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpes.append(np.where(std > 0, samples.mean(axis=1) / std, np.nan))
    if not sharpes:
        return (math.nan, math.nan)
    return _percentile_ci(np.mean(sharpes, axis=0) * math.sqrt(periods_per_year), level)
