"""Investor-type flows: weekly J-Quants ``trades_spec`` tables by market section.

A weekly table published on day P becomes usable from the first trading day after P (it is
published after the close). Each stock reads the latest usable table of its own section
(market code 0111 -> TSEPrime, 0112 -> TSEStandard, 0113 -> TSEGrowth, as of the date).
"""

from __future__ import annotations

import polars as pl

SECTION_OF_MARKET: dict[str, str] = {"0111": "TSEPrime", "0112": "TSEStandard", "0113": "TSEGrowth"}
FLOW_WEEKS = 13

_NET = {
    "flow_foreign_net": "Foreigners",
    "flow_individual_net": "Individuals",
    "flow_trust_net": "InvestmentTrusts",
    "flow_proprietary_net": "Proprietary",
}
FLOW_COLUMNS = [*_NET, "flow_foreign_z_13w", "flow_activity_13w"]


def effective_next_day(events: pl.DataFrame, on: str, calendar: pl.DataFrame) -> pl.DataFrame:
    """Add ``Date``: the first trading date strictly after ``events[on]`` (null past the calendar)."""
    return (
        events.sort(on)
        .join_asof(
            calendar.select(pl.col("Date").alias("_eff")).with_columns(Date=pl.col("_eff")),
            left_on=on,
            right_on="_eff",
            strategy="forward",
            allow_exact_matches=False,
        )
        .drop("_eff")
    )


def flow_frame(trades_spec: pl.DataFrame, calendar: pl.DataFrame) -> pl.DataFrame:
    """Dense (Date, Section, flow_*) on every calendar date of every section with tables.

    The weekly features are computed on each section's sequence of tables (rolling over 13
    publications), then forward-filled over the calendar from their effective dates.
    """
    weekly = (
        trades_spec.with_columns(pl.col("PublishedDate").cast(pl.Date))
        .filter(pl.col("Section").is_in(list(SECTION_OF_MARKET.values())))
        .sort("Section", "PublishedDate")
        .unique(["Section", "PublishedDate"], keep="last", maintain_order=True)
    )
    fb = pl.col("ForeignersBalance")
    weekly = weekly.with_columns(
        *[
            (pl.col(f"{who}Balance") / pl.col(f"{who}Total")).alias(name)
            for name, who in _NET.items()
        ],
        flow_foreign_z_13w=(
            (fb - fb.rolling_mean(FLOW_WEEKS, min_samples=FLOW_WEEKS).over("Section"))
            / fb.rolling_std(FLOW_WEEKS, min_samples=FLOW_WEEKS).over("Section")
        ),
        flow_activity_13w=pl.col("TotalTotal")
        / pl.col("TotalTotal").rolling_mean(FLOW_WEEKS, min_samples=FLOW_WEEKS).over("Section"),
    )
    weekly = effective_next_day(
        weekly.select("Section", "PublishedDate", *FLOW_COLUMNS), "PublishedDate", calendar
    )
    weekly = (
        weekly.filter(pl.col("Date").is_not_null())
        .sort("Section", "Date", "PublishedDate")
        .unique(["Section", "Date"], keep="last", maintain_order=True)
        .drop("PublishedDate")
        .rename({"Date": "_from"})
    )
    # Each (date, section) reads the latest table effective on or before the date, as a whole.
    dense = calendar.join(weekly.select("Section").unique(), how="cross").join(
        weekly.select("Section", pl.col("_from").alias("Date"), "_from"),
        on=["Section", "Date"],
        how="left",
        maintain_order="left",
    )
    dense = dense.sort("Section", "Date").with_columns(
        pl.col("_from").forward_fill().over("Section")
    )
    return dense.join(weekly, on=["Section", "_from"], how="left", maintain_order="left").drop(
        "_from"
    )
