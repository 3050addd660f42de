from datetime import date

import polars as pl
import pytest

from atft_kedro.features import build_features
from tests.features.tables import make_panel, trading_days


def _statement(d: date, time: str | None, kind: str, sales: float, profit: float) -> dict:
    return {
        "DisclosedDate": d,
        "DisclosedTime": time,
        "Code": "13000",
        "TypeOfCurrentPeriod": kind,
        "NetSales": sales,
        "OperatingProfit": sales * 0.1,
        "OrdinaryProfit": sales * 0.1,
        "Profit": profit,
        "EarningsPerShare": 1.0,
        "TotalAssets": sales * 2,
        "Equity": sales,
        "ForecastNetSales": sales * 4,
        "ForecastOperatingProfit": sales * 0.5,
        "ForecastProfit": 1.0,
    }


@pytest.fixture(scope="module")
def built():
    panel = make_panel(n_codes=2, n_days=300, seed=2)
    days = trading_days(300)
    stmts = pl.DataFrame(
        [
            _statement(days[10], "14:59:59", "1Q", 100.0, 5.0),  # before close: same day
            _statement(days[30], "15:00:00", "2Q", 210.0, 12.0),  # at the close: next day
            _statement(
                days[270], None, "1Q", 130.0, 6.0
            ),  # unknown time: next day; YoY vs days[10]
        ]
    )
    return days, build_features(panel, statements=stmts, cs_method="none")


def test_effective_dates_and_values(built):
    days, df = built
    rows = df.filter(pl.col("Code") == "13000").sort("Date")
    margin = rows["stmt_op_margin"].to_list()
    assert margin[9] != margin[9]  # NaN before the first disclosure
    assert margin[10] == pytest.approx(0.1)
    assert rows["stmt_net_margin"][10] == pytest.approx(0.05)
    assert rows["stmt_net_margin"][30] == pytest.approx(0.05)  # 2Q not yet effective
    assert rows["stmt_net_margin"][31] == pytest.approx(12.0 / 210.0)
    assert rows["stmt_roe"][31] == pytest.approx(12.0 / 210.0 * 2)  # half-year annualised
    assert rows["stmt_progress_sales"][31] == pytest.approx(0.25)
    assert rows["stmt_days_since"][35] == 4
    assert rows["stmt_yoy_sales"][270] != rows["stmt_yoy_sales"][270]
    assert rows["stmt_yoy_sales"][271] == pytest.approx(130.0 / 100.0 - 1, rel=1e-5)
    assert rows["stmt_yoy_profit"][271] == pytest.approx(6.0 / 5.0 - 1, rel=1e-5)
    assert rows["is_statements_valid"][271] == 1 and rows["is_statements_valid"][200] == 0


def test_code_without_statements_is_masked(built):
    _, df = built
    other = df.filter(pl.col("Code") != "13000")
    assert other["stmt_op_margin"].is_nan().all()
    assert (other["is_statements_valid"] == 0).all()
