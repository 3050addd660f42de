import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.graph.returns import daily_log_returns


def _panel(rows):
    return pl.DataFrame(
        rows,
        schema=["Date", "Code", "close", "market", "sector33"],
        orient="row",
        schema_overrides={"Date": pl.Date},
    )


def test_returns_are_over_consecutive_trading_days():
    d = [dt.date(2024, 1, i) for i in (4, 5, 8, 9)]
    panel = _panel(
        [
            (d[0], "10000", 100.0, "0111", "0050"),
            (d[1], "10000", 110.0, "0111", "0050"),
            (d[2], "10000", None, "0111", "0050"),  # no trade
            (d[3], "10000", 121.0, "0111", "0050"),
            (d[0], "20000", 50.0, "0112", None),
            (d[3], "20000", 55.0, "0112", None),  # no row on d[1], d[2]
            (d[1], "30000", 10.0, None, "0050"),
            (d[2], "30000", 20.0, None, "0050"),
        ]
    )
    returns = daily_log_returns(panel)
    assert returns.dates == d and returns.codes == ["10000", "20000", "30000"]
    expected = np.full((4, 3), np.nan)
    expected[1, 0] = np.log(1.1)
    expected[2, 2] = np.log(2.0)
    np.testing.assert_allclose(returns.log_returns, expected)  # gaps never span two days
    assert returns.present[:, 1].tolist() == [True, False, False, True]
    assert returns.categories["sector33"][3].tolist() == [0, -1, -1]
    assert returns.categories["market"][1].tolist() == [0, -1, -1]


def test_bad_panels_are_rejected_with_the_offending_row():
    d = dt.date(2024, 1, 4)
    with pytest.raises(ValueError, match=r"'close' has 1 non-positive .*20000 on 2024-01-04"):
        daily_log_returns(
            _panel([(d, "10000", 1.0, "0111", "0050"), (d, "20000", 0.0, "0111", "0050")])
        )
    with pytest.raises(ValueError, match="duplicated"):
        daily_log_returns(
            _panel([(d, "10000", 1.0, "0111", "0050"), (d, "10000", 2.0, "0111", "0050")])
        )
    with pytest.raises(ValueError, match="missing column"):
        daily_log_returns(pl.DataFrame({"Date": [d], "Code": ["10000"]}))
