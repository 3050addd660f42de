"""The daily panel: split-adjusted OHLCV per (Date, Code) with the point-in-time market and sector.

Two look-ahead traps are closed here.

1. **Adjusted prices.** J-Quants' ``Adjustment*`` columns are back-adjusted to the *latest*
   corporate action: a split after date t rescales every adjusted price before t, so the level at t
   depends on the future. We adjust forward instead. ``AdjustmentFactor`` is the share ratio on the
   ex-date (0.5 for a 1:2 split), so with the cumulative factor up to and including t,

       F(t) = Π_{s ≤ t} AdjustmentFactor(s)          (per Code, over its rows)
       price_adj(t)  = price(t) / F(t)
       volume_adj(t) = volume(t) · F(t)

   the series is continuous across splits and uses nothing after t. It differs from J-Quants'
   ``AdjustmentClose`` only by a constant per code, so returns are identical.

2. **Market and sector.** ``listed_info`` rows are snapshots: a row applies from its Date until
   the next row of the same Code. Each quote takes the latest row dated on or before it (as-of
   join, backward). Dates before a code's first row get null — never back-filled from a later
   snapshot.
"""

from __future__ import annotations

import logging

import polars as pl

logger = logging.getLogger(__name__)

PANEL_COLUMNS = (
    "Date",
    "Code",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "turnover",
    "adj_factor",
    "market",
    "sector33",
    "sector17",
)


def forward_adjusted(daily_quotes: pl.DataFrame) -> pl.DataFrame:
    """Point-in-time split-adjusted OHLCV from raw prices and the per-day AdjustmentFactor.

    Args:
        daily_quotes: canonical quotes (Date, Code, Open, High, Low, Close, Volume,
            TurnoverValue, AdjustmentFactor), any order.

    Returns:
        Date, Code, open, high, low, close, volume, turnover (yen), adj_factor; sorted by
        Code then Date. Prices in yen of the code's first listed share, volume in those shares.
    """
    cumulative = pl.col("AdjustmentFactor").fill_null(1.0).cum_prod().over("Code")
    return (
        daily_quotes.sort("Code", "Date")
        .with_columns(cumulative.alias("_F"))
        .select(
            "Date",
            "Code",
            (pl.col("Open") / pl.col("_F")).alias("open"),
            (pl.col("High") / pl.col("_F")).alias("high"),
            (pl.col("Low") / pl.col("_F")).alias("low"),
            (pl.col("Close") / pl.col("_F")).alias("close"),
            (pl.col("Volume") * pl.col("_F")).alias("volume"),
            pl.col("TurnoverValue").alias("turnover"),
            pl.col("AdjustmentFactor").alias("adj_factor"),
        )
    )


def point_in_time_listing(dates_codes: pl.DataFrame, listed_info: pl.DataFrame) -> pl.DataFrame:
    """Attach market, sector33 and sector17 as of each (Date, Code): backward as-of join.

    Args:
        dates_codes: frame with Date and Code (other columns are kept).
        listed_info: canonical listed_info (Date as-of, Code, MarketCode, Sector33Code, ...).
    """
    snapshots = listed_info.select(
        "Date",
        "Code",
        pl.col("MarketCode").alias("market"),
        pl.col("Sector33Code").alias("sector33"),
        pl.col("Sector17Code").alias("sector17"),
    ).sort("Date")
    return dates_codes.sort("Date").join_asof(
        snapshots, on="Date", by="Code", strategy="backward", check_sortedness=False
    )


def build_panel(daily_quotes: pl.DataFrame, listed_info: pl.DataFrame) -> pl.DataFrame:
    """The 03_primary panel (docs/contracts.md), one row per (Date, Code) of daily_quotes.

    Args:
        daily_quotes: canonical, validated quotes.
        listed_info: canonical, validated listing snapshots.

    Returns:
        Date, Code, open, high, low, close, volume, turnover, adj_factor (Float64; prices
        forward-adjusted, see the module docstring), market, sector33, sector17 (Utf8, point in
        time; null before the code's first listed_info row). Sorted by Date then Code.
    """
    panel = point_in_time_listing(forward_adjusted(daily_quotes), listed_info)
    panel = panel.select(PANEL_COLUMNS).sort("Date", "Code")
    n_unlisted = panel["sector33"].null_count()
    if n_unlisted:
        logger.warning(
            "panel: %d of %d rows precede their code's first listed_info row; "
            "market/sector left null (not back-filled)",
            n_unlisted,
            panel.height,
        )
    return panel
