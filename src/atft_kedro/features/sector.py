"""Sector features: equal-weight sector33 return series built from the universe on each date.

Membership is the panel's point-in-time ``sector33`` (as of each date), so a stock that changes
sector moves between series on the day it changes, never earlier.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.returns_volatility import lag


def sector_frame(sums: pl.LazyFrame) -> pl.LazyFrame:
    """(Date, sector33, sec_ret_1d, sec_mom_5d, sec_mom_20d, sec_vol_20d, sec_breadth).

    ``sums`` holds per (Date, sector33): ``sum_r`` (sum of the stocks' 1-day returns), ``n`` (how
    many stocks have one) and ``n_up`` (how many rose). Windows run over each sector's own dates.
    """
    daily = (
        sums.filter(pl.col("sector33").is_not_null() & (pl.col("n") > 0))
        .select(
            "Date",
            "sector33",
            sec_ret_1d=pl.col("sum_r") / pl.col("n"),
            sec_breadth=pl.col("n_up") / pl.col("n"),
        )
        .sort("sector33", "Date")
    )
    log_growth = pl.col("sec_ret_1d").log1p()
    return daily.with_columns(
        sec_mom_5d=log_growth.rolling_sum(5, min_samples=5).over("sector33").exp() - 1.0,
        sec_mom_20d=log_growth.rolling_sum(20, min_samples=20).over("sector33").exp() - 1.0,
        sec_vol_20d=pl.col("sec_ret_1d").rolling_std(20, min_samples=20).over("sector33"),
    )


def relative_to_sector_exprs() -> list[pl.Expr]:
    """Stock minus its sector over 1, 5 and 20 rows (after the sector frame is joined)."""
    c = pl.col("c")
    return [
        (pl.col("r") - pl.col("sec_ret_1d")).alias("rel_to_sec_1d"),
        (c / lag(c, 5) - 1.0 - pl.col("sec_mom_5d")).alias("rel_to_sec_5d"),
        (c / lag(c, 20) - 1.0 - pl.col("sec_mom_20d")).alias("rel_to_sec_20d"),
    ]
