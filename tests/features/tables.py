"""Tiny hand-made market tables for the feature tests (no dependency on the synthetic generator)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

MARKETS = ["0111", "0112", "0113"]
SECTORS = ["0050", "1050", "3050", "3650"]


def trading_days(n: int, start: date = date(2021, 1, 4)) -> list[date]:
    """``n`` weekdays from ``start``."""
    days, d = [], start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def make_panel(n_codes: int = 6, n_days: int = 150, seed: int = 0) -> pl.DataFrame:
    """A random-walk panel with a market factor, sorted by (Date, Code)."""
    rng = np.random.default_rng(seed)
    days = trading_days(n_days)
    mkt = rng.normal(0.0003, 0.01, n_days)
    rows = []
    for i in range(n_codes):
        beta = 0.5 + i * 0.2
        r = beta * mkt + rng.normal(0.0, 0.015 + 0.002 * i, n_days)
        close = 100.0 * (1 + i) * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.005, n_days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n_days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n_days)))
        vol = rng.integers(1_000, 100_000, n_days).astype(float)
        rows.append(
            pl.DataFrame(
                {
                    "Date": days,
                    "Code": f"{1300 + i * 10:04d}0",
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": vol,
                    "turnover": vol * close,
                    "adj_factor": 1.0,
                    "market": MARKETS[i % 3],
                    "sector33": SECTORS[i % len(SECTORS)],
                    "sector17": str(i % 2 + 1),
                }
            )
        )
    return pl.concat(rows).sort("Date", "Code")


def make_topix(panel: pl.DataFrame, seed: int = 1) -> pl.DataFrame:
    """A TOPIX-like table over the panel's dates."""
    rng = np.random.default_rng(seed)
    days = panel["Date"].unique().sort()
    close = 2000.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.009, len(days))))
    return pl.DataFrame(
        {"Date": days, "Open": close, "High": close * 1.003, "Low": close * 0.997, "Close": close}
    )


def make_trades_spec(panel: pl.DataFrame, seed: int = 2) -> pl.DataFrame:
    """Weekly investor-type tables per section, published each Thursday for the prior week."""
    rng = np.random.default_rng(seed)
    days = panel["Date"].unique().sort().to_list()
    thursdays = [d for d in days if d.weekday() == 3]
    cols: dict[str, list] = {"PublishedDate": [], "StartDate": [], "EndDate": [], "Section": []}
    who = ["Proprietary", "Individuals", "Foreigners", "InvestmentTrusts", "TrustBanks", "Total"]
    for w in who:
        for k in ("Sales", "Purchases", "Total", "Balance"):
            cols[f"{w}{k}"] = []
    for d in thursdays:
        for section in ["TSEPrime", "TSEStandard", "TSEGrowth"]:
            cols["PublishedDate"].append(d)
            cols["StartDate"].append(d - timedelta(days=10))
            cols["EndDate"].append(d - timedelta(days=6))
            cols["Section"].append(section)
            for w in who:
                sales, purchases = rng.uniform(1e6, 2e6, 2)
                cols[f"{w}Sales"].append(sales)
                cols[f"{w}Purchases"].append(purchases)
                cols[f"{w}Total"].append(sales + purchases)
                cols[f"{w}Balance"].append(purchases - sales)
    return pl.DataFrame(cols)


def make_statements(panel: pl.DataFrame, seed: int = 3) -> pl.DataFrame:
    """Quarterly disclosures for every code, alternating before and after the close."""
    rng = np.random.default_rng(seed)
    days = panel["Date"].unique().sort().to_list()
    rows = []
    types = ["1Q", "2Q", "3Q", "FY"]
    for j, code in enumerate(panel["Code"].unique().sort().to_list()):
        for k, idx in enumerate(range(5 + j, len(days), 30)):
            sales = 1e9 * (1 + 0.1 * j) * (1 + 0.05 * k) * rng.uniform(0.9, 1.1)
            rows.append(
                {
                    "DisclosedDate": days[idx],
                    "DisclosedTime": "13:00:00" if k % 2 == 0 else "15:30:00",
                    "Code": code,
                    "TypeOfCurrentPeriod": types[k % 4],
                    "NetSales": sales,
                    "OperatingProfit": sales * rng.uniform(0.05, 0.15),
                    "OrdinaryProfit": sales * 0.1,
                    "Profit": sales * rng.uniform(0.02, 0.08),
                    "EarningsPerShare": 10.0,
                    "TotalAssets": sales * 3,
                    "Equity": sales * rng.uniform(1.0, 1.5),
                    "ForecastNetSales": sales * rng.uniform(3.5, 4.5),
                    "ForecastOperatingProfit": sales * rng.uniform(0.3, 0.5),
                    "ForecastProfit": sales * 0.2,
                }
            )
    return pl.DataFrame(rows)


def with_flat_stretch(
    panel: pl.DataFrame, code: str, like: str, first: int, last: int, price: float
) -> pl.DataFrame:
    """``panel`` plus a stock ``code`` that trades like ``like`` (same dates, volumes, listing)
    except on its rows ``first`` … ``last`` − 1, where its bar is exactly ``price`` (open = high =
    low = close) while it still trades: a price that does not move for weeks."""
    rows = panel.filter(pl.col("Code") == like).sort("Date")
    i = pl.int_range(pl.len())
    flat = (i >= first) & (i < last)
    rows = rows.with_columns(
        pl.lit(code).alias("Code"),
        *[
            pl.when(flat).then(pl.lit(price)).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ],
    ).with_columns(turnover=pl.col("volume") * pl.col("close"))
    return pl.concat([panel, rows]).sort("Date", "Code")


def with_flat_stocks(panel: pl.DataFrame) -> pl.DataFrame:
    """``panel`` (``make_panel()``'s codes) plus two stocks whose price does not move for 114 and
    92 sessions (rows 11 … 124 and 33 … 124) while they trade, each after a code that keeps
    moving: their returns are exactly 0, and a running sum down the column reaches their
    windows with the rounding residue of the codes before them (later dates included)."""
    panel = with_flat_stretch(panel, "13205", like="13300", first=11, last=125, price=100.0)
    return with_flat_stretch(panel, "13505", like="13400", first=33, last=125, price=500.0)
