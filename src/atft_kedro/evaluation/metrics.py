"""Cross-sectional predictive power, measured day by day.

For each trading day t and horizon h, over the stocks with a finite prediction and a finite target:

* IC(t)      = Pearson correlation between ``pred_{h}d`` and ``target_{h}d``;
* RankIC(t)  = Spearman correlation = Pearson correlation of their average ranks (ties share the
  mean of the ranks they span).

A day is skipped (and counted) when it has fewer than ``min_stocks`` valid pairs or when either
column has zero cross-sectional variance, because a correlation is then undefined or meaningless.
Summaries are taken over days, never over pooled (Date, Code) rows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import polars as pl

from atft_kedro.evaluation.predictions import require_columns


class DailyIC(NamedTuple):
    table: pl.DataFrame  # Date, ic, rank_ic, n (one row per evaluated day, sorted by Date)
    n_skipped: int  # days present in the input but without a defined correlation


def _valid_pairs(
    preds: pl.DataFrame, pred_col: str, target_col: str, keys: tuple[str, ...] = ("Date",)
) -> pl.DataFrame:
    """The scorable rows: ``keys``, ``p`` and ``y`` (Float64), both finite."""
    require_columns(preds, (*keys, pred_col, target_col))
    return preds.select(
        *keys, p=pl.col(pred_col).cast(pl.Float64), y=pl.col(target_col).cast(pl.Float64)
    ).filter(pl.col("p").is_finite() & pl.col("y").is_finite())


def ranked_cross_sections(
    preds: pl.DataFrame,
    pred_col: str,
    target_col: str,
    min_stocks: int,
    *,
    descending: bool = False,
) -> pl.DataFrame:
    """Each day's evaluable cross-section ranked by prediction: Date, Code, ``p``, ``y`` (the
    rows with a finite prediction and target), ``n`` (the day's stocks) and ``r`` (1 … n, the
    ordinal rank: lowest prediction first, highest with ``descending``; ties by Code), in that
    order. Days with fewer than ``min_stocks`` stocks are left out."""
    return (
        _valid_pairs(preds, pred_col, target_col, ("Date", "Code"))
        .sort("Date", "p", "Code", descending=[False, descending, False])
        .with_columns(n=pl.len().over("Date"), r=pl.int_range(1, pl.len() + 1).over("Date"))
        .filter(pl.col("n") >= min_stocks)
    )


def daily_ic(preds: pl.DataFrame, pred_col: str, target_col: str, min_stocks: int = 10) -> DailyIC:
    """Per-day IC and RankIC. ``preds`` has Date, ``pred_col``, ``target_col`` (one row per stock)."""
    n_days = preds.select(pl.col("Date").n_unique()).item() if preds.height else 0
    per_day = (
        _valid_pairs(preds, pred_col, target_col)
        .group_by("Date", maintain_order=True)  # fixed row order: bit-reproducible sums
        .agg(
            n=pl.len(),
            p_std=pl.col("p").std(),
            y_std=pl.col("y").std(),
            ic=pl.corr("p", "y"),
            rank_ic=pl.corr(pl.col("p").rank("average"), pl.col("y").rank("average")),
        )
        .filter((pl.col("n") >= min_stocks) & (pl.col("p_std") > 0) & (pl.col("y_std") > 0))
        .select("Date", "ic", "rank_ic", pl.col("n").cast(pl.Int64))
        .sort("Date")
    )
    return DailyIC(per_day, n_days - per_day.height)


def series_summary(values: np.ndarray, n_skipped: int = 0) -> dict[str, float]:
    """Summary of a daily series x_1..x_n.

    mean; std (sample, ddof=1); icir = mean/std (per day, not annualised);
    t_stat = mean/(std/√n) (assumes independent days: overlapping targets inflate it);
    hit_rate = share of days with x > 0; n_days = n; n_skipped as given.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    icir = mean / std if n > 1 and std > 0 else math.nan
    return {
        "mean": mean,
        "std": std,
        "icir": icir,
        "t_stat": icir * math.sqrt(n) if n > 1 else math.nan,
        "hit_rate": float((x > 0).mean()) if n else math.nan,
        "n_days": int(n),
        "n_skipped": int(n_skipped),
    }


def ic_summary(daily: DailyIC) -> dict[str, dict[str, float]]:
    """``{"ic": series_summary(IC), "rank_ic": series_summary(RankIC)}`` over the evaluated days."""
    return {
        col: series_summary(daily.table[col].to_numpy(), daily.n_skipped)
        for col in ("ic", "rank_ic")
    }


def decile_returns(
    preds: pl.DataFrame, pred_col: str, target_col: str, n_bins: int = 10
) -> pl.DataFrame:
    """Mean target per prediction bin: per day, bin b = ⌊(rank−1)·n_bins/n⌋ (0 = lowest prediction,
    ordinal ranks with Code as tie-break), average target within each bin, then average over days.

    Returns DataFrame[decile (0..n_bins−1), mean_return, n_days]. Days with fewer than ``n_bins``
    valid stocks are left out.
    """
    valid = ranked_cross_sections(preds, pred_col, target_col, n_bins)
    return (
        valid.with_columns(decile=((pl.col("r") - 1) * n_bins // pl.col("n")).cast(pl.Int32))
        .group_by("Date", "decile", maintain_order=True)  # fixed order: bit-reproducible
        .agg(day_mean=pl.col("y").mean())
        .group_by("decile", maintain_order=True)
        .agg(mean_return=pl.col("day_mean").mean(), n_days=pl.len())
        .sort("decile")
    )
