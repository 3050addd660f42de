"""Financial-statement features: the latest disclosure of each code that is effective on the date.

A disclosure made before the market close (``DisclosedTime < market_close``) is effective on its
own trading day (the close at t already reflects it); one made at or after the close, or with no
time, is effective from the next trading day. ``prev_year`` is the latest disclosure of the same
code and period type (1Q/2Q/3Q/FY) made 300 to 430 days earlier.

Earnings news against the company's own guidance (Japanese companies publish a full-year forecast
with every quarterly report): ``earnings_surprise`` is the quarter's profit minus a quarter of the
full-year forecast the company stood by before it, over that quarter forecast (a standardised
unexpected earnings, SUE, with the company's forecast as the expectation), and
``forecast_revision`` how far the company moved that forecast. Prices drift after such news for
weeks (post-earnings-announcement drift, Bernard & Thomas 1989), so both outlast the day after the
signal; their age is ``stmt_days_since``.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

STATEMENT_COLUMNS = [
    "stmt_yoy_sales",
    "stmt_yoy_op",
    "stmt_yoy_profit",
    "stmt_op_margin",
    "stmt_net_margin",
    "stmt_progress_sales",
    "stmt_progress_op",
    "stmt_roe",
    "stmt_roa",
    "earnings_surprise",
    "forecast_revision",
]
#: the period a cumulative (year-to-date) disclosure follows within its fiscal year
_PREVIOUS_QUARTER = {"2Q": "1Q", "3Q": "2Q", "FY": "3Q"}
_NEWS_CLIP = 5.0  # bound on the surprise and the revision (a forecast near 0 makes them explode)
_ANNUALISE = {"1Q": 4.0, "2Q": 2.0, "3Q": 4.0 / 3.0, "FY": 1.0}
_YOY_MIN, _YOY_MAX = timedelta(days=300), timedelta(days=430)


def effective_dates(
    statements: pl.DataFrame, calendar: pl.DataFrame, market_close: str = "15:00"
) -> pl.DataFrame:
    """Add ``Date``: the trading date from which each disclosure is known (null past the calendar)."""
    close = market_close if market_close.count(":") == 2 else f"{market_close}:00"
    before_close = pl.col("DisclosedTime").is_not_null() & (pl.col("DisclosedTime") < close)
    keyed = statements.with_columns(
        _key=pl.when(before_close)
        .then(pl.col("DisclosedDate"))
        .otherwise(pl.col("DisclosedDate") + timedelta(days=1))
    ).sort("_key")
    trading = calendar.select(pl.col("Date").alias("_eff")).with_columns(Date=pl.col("_eff"))
    joined = keyed.join_asof(trading, left_on="_key", right_on="_eff", strategy="forward")
    return joined.drop("_key", "_eff")


def with_earnings_news(statements: pl.DataFrame) -> pl.DataFrame:
    """``statements`` with ``earnings_surprise`` and ``forecast_revision`` (registry formulas),
    each disclosure compared with the code's previous one in disclosure order."""
    order = statements.sort("Code", "DisclosedDate", "DisclosedTime", nulls_last=False)
    before = {c: pl.col(c).shift(1).over("Code") for c in ("Profit", "ForecastProfit")}
    kind, previous_kind = pl.col("TypeOfCurrentPeriod"), pl.col("TypeOfCurrentPeriod").shift(1)
    follows = previous_kind.over("Code") == kind.replace_strict(_PREVIOUS_QUARTER, default=None)
    quarter = (
        pl.when(kind == "1Q")
        .then(pl.col("Profit"))
        .when(follows)
        .then(pl.col("Profit") - before["Profit"])
    )
    guided = before["ForecastProfit"]
    scale = pl.when(guided.abs() > 0).then(guided.abs())
    return order.with_columns(
        earnings_surprise=((quarter - guided / 4) / (scale / 4)).clip(-_NEWS_CLIP, _NEWS_CLIP),
        forecast_revision=pl.when(kind != "FY")
        .then((pl.col("ForecastProfit") - guided) / scale)
        .clip(-_NEWS_CLIP, _NEWS_CLIP),
    )


_AMOUNTS = [
    "NetSales",
    "OperatingProfit",
    "Profit",
    "TotalAssets",
    "Equity",
    "ForecastNetSales",
    "ForecastOperatingProfit",
    "ForecastProfit",
]


def _typed(statements: pl.DataFrame) -> pl.DataFrame:
    """The statements with typed keys and Float64 amounts, sorted by (Code, period type, date)."""
    return statements.with_columns(
        pl.col("DisclosedDate").cast(pl.Date),
        pl.col("DisclosedTime").cast(pl.Utf8),
        pl.col("Code").cast(pl.Utf8),
        pl.col(_AMOUNTS).cast(pl.Float64),
    ).sort("Code", "TypeOfCurrentPeriod", "DisclosedDate")


def _with_year_ago(s: pl.DataFrame) -> pl.DataFrame:
    """Each statement with the last one of the same code and period type disclosed at least
    ``_YOY_MIN`` earlier: its date (``_prev_date``), sales, operating profit and profit."""
    prev = s.select(
        "Code",
        "TypeOfCurrentPeriod",
        pl.col("DisclosedDate").alias("_prev_date"),
        pl.col("NetSales").alias("_prev_sales"),
        pl.col("OperatingProfit").alias("_prev_op"),
        pl.col("Profit").alias("_prev_profit"),
    )
    return s.with_columns(_lookup=pl.col("DisclosedDate") - _YOY_MIN).join_asof(
        prev,
        left_on="_lookup",
        right_on="_prev_date",
        by=["Code", "TypeOfCurrentPeriod"],
        strategy="backward",
        check_sortedness=False,
    )


def _ratio_features(s: pl.DataFrame) -> pl.DataFrame:
    """Year-on-year growth (when the year-ago statement is at most ``_YOY_MAX`` old), margins,
    progress against the forecast and annualised ROE / ROA."""
    recent = pl.col("_prev_date") >= pl.col("DisclosedDate") - _YOY_MAX
    yearly = pl.col("TypeOfCurrentPeriod").replace_strict(_ANNUALISE, default=None)

    def growth(now: str, before: str) -> pl.Expr:
        return pl.when(recent).then(pl.col(now) / pl.col(before).abs() - 1.0)

    return s.with_columns(
        stmt_yoy_sales=growth("NetSales", "_prev_sales"),
        stmt_yoy_op=growth("OperatingProfit", "_prev_op"),
        stmt_yoy_profit=growth("Profit", "_prev_profit"),
        stmt_op_margin=pl.col("OperatingProfit") / pl.col("NetSales"),
        stmt_net_margin=pl.col("Profit") / pl.col("NetSales"),
        stmt_progress_sales=pl.col("NetSales") / pl.col("ForecastNetSales"),
        stmt_progress_op=pl.col("OperatingProfit") / pl.col("ForecastOperatingProfit"),
        stmt_roe=pl.col("Profit") / pl.col("Equity") * yearly,
        stmt_roa=pl.col("Profit") / pl.col("TotalAssets") * yearly,
    )


def statement_frame(
    statements: pl.DataFrame, calendar: pl.DataFrame, market_close: str = "15:00"
) -> pl.DataFrame:
    """(Code, Date = effective date, stmt_* features) with one row per code and effective date."""
    s = _ratio_features(_with_year_ago(_typed(statements)))
    s = with_earnings_news(s)
    s = effective_dates(s, calendar, market_close).filter(pl.col("Date").is_not_null())
    return (
        s.sort("Code", "Date", "DisclosedDate", "DisclosedTime", nulls_last=False)
        .unique(["Code", "Date"], keep="last", maintain_order=True)
        .select("Code", "Date", *STATEMENT_COLUMNS)
    )
