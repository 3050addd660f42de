"""Panel: forward split adjustment (no look-ahead) and the point-in-time sector join."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.market.panel import PANEL_COLUMNS, build_panel
from atft_kedro.market.validation import validate

D = [dt.date(2024, 1, d) for d in (4, 5, 9, 10, 11, 12, 15, 16)]


def quotes(
    closes: dict[str, list[float | None]], factors: dict[str, dict[int, float]] | None = None
):
    """Canonical quotes with J-Quants' back-adjusted Adjustment* columns computed from the factors.

    closes[code][i] is the raw close on D[i] (None: no row). factors[code][i] is the
    AdjustmentFactor on D[i] (default 1).
    """
    factors = factors or {}
    rows = []
    for code, series in closes.items():
        f = np.array([factors.get(code, {}).get(i, 1.0) for i in range(len(series))])
        # J-Quants: adjusted(t) = raw(t) × Π_{s>t} factor(s) (back-adjusted to the latest action)
        later = np.append(np.cumprod(f[::-1])[::-1][1:], 1.0)
        for i, close in enumerate(series):
            if close is None:
                continue
            raw = {"Open": close * 0.99, "High": close * 1.01, "Low": close * 0.98, "Close": close}
            volume = 1000.0 + 10 * i
            rows.append(
                {"Date": D[i], "Code": code, **raw, "Volume": volume}
                | {"TurnoverValue": volume * close, "AdjustmentFactor": f[i]}
                | {f"Adjustment{k}": v * later[i] for k, v in raw.items()}
                | {"AdjustmentVolume": volume / later[i]}
            )
    return validate("daily_quotes", pl.DataFrame(rows))


def listing(rows: list[tuple[dt.date, str, str, str]]) -> pl.DataFrame:
    """listed_info from (as-of date, code, market, sector33)."""
    return validate(
        "listed_info",
        pl.DataFrame(
            {
                "Date": [r[0] for r in rows],
                "Code": [r[1] for r in rows],
                "MarketCode": [r[2] for r in rows],
                "Sector33Code": [r[3] for r in rows],
                "Sector17Code": ["6"] * len(rows),
            }
        ),
    )


CLOSES = {
    "72030": [2800.0, 2830.0, 2815.0, 2900.0, 1460.0, 1475.0, 1490.0, 1470.0],
    "130A0": [None, None, 800.0, 840.0, 820.0, 860.0, 900.0, 910.0],
}
SPLIT = {"72030": {4: 0.5}}  # 1:2 split, ex-date D[4]
LISTING = [
    (D[0], "72030", "0111", "3700"),
    (D[3], "130A0", "0113", "5250"),  # listed info starts a day after 130A0's first quote
    (D[5], "72030", "0112", "3650"),  # market and sector change dated D[5]
]


def returns(df: pl.DataFrame, column: str) -> pl.Series:
    return df.sort("Code", "Date").select(pl.col(column).pct_change().over("Code"))[column]


def test_columns_rows_and_order():
    dq = quotes(CLOSES, SPLIT)
    panel = build_panel(dq, listing(LISTING))
    assert panel.columns == list(PANEL_COLUMNS)
    assert panel.height == dq.height
    assert panel.select("Date", "Code").rows() == sorted(dq.select("Date", "Code").rows())


def test_forward_adjusted_close_is_continuous_across_a_split():
    panel = build_panel(quotes(CLOSES, SPLIT), listing(LISTING)).filter(pl.col("Code") == "72030")
    close = panel["close"].to_numpy()
    assert close[:4].tolist() == CLOSES["72030"][:4]  # before the split: raw prices
    assert close[4] == pytest.approx(CLOSES["72030"][4] / 0.5)
    assert abs(close[4] / close[3] - 1) < 0.05  # no jump (raw prices halve)
    volume = panel["volume"].to_numpy()
    assert volume[4] == pytest.approx((1000.0 + 40) * 0.5)


def test_returns_equal_those_of_the_jquants_adjusted_columns():
    dq = quotes(CLOSES, SPLIT)
    panel = build_panel(dq, listing(LISTING))
    for ours, theirs in [
        ("close", "AdjustmentClose"),
        ("open", "AdjustmentOpen"),
        ("volume", "AdjustmentVolume"),
    ]:
        np.testing.assert_allclose(
            returns(panel, ours).to_numpy()[1:], returns(dq, theirs).to_numpy()[1:], rtol=1e-12
        )


def test_no_value_at_t_depends_on_data_after_t():
    t = D[3]
    base = build_panel(quotes(CLOSES, SPLIT), listing(LISTING))
    # perturb everything after t: other prices, a new later split, a later sector change
    closes = {
        c: [v if i <= 3 or v is None else v * 1.7 for i, v in enumerate(s)]
        for c, s in CLOSES.items()
    }
    factors = {"72030": {4: 0.5, 6: 0.25}, "130A0": {5: 2.0}}
    later_listing = [*LISTING, (D[6], "130A0", "0111", "9050")]
    perturbed = build_panel(quotes(closes, factors), listing(later_listing))
    assert (
        perturbed.filter(pl.col("Date") > t).drop("Date", "Code").rows()
        != base.filter(pl.col("Date") > t).drop("Date", "Code").rows()
    )
    assert perturbed.filter(pl.col("Date") <= t).equals(base.filter(pl.col("Date") <= t))


def test_jquants_adjusted_columns_do_look_ahead():
    """Why the panel re-adjusts: a later split changes J-Quants' adjusted close before it."""
    early = quotes(CLOSES, {}).filter(pl.col("Date") == D[0])["AdjustmentClose"]
    late = quotes(CLOSES, {"72030": {6: 0.5}}).filter(pl.col("Date") == D[0])["AdjustmentClose"]
    assert early.to_list() != late.to_list()


def test_sector_change_dated_t_affects_only_dates_from_t():
    panel = build_panel(quotes(CLOSES, SPLIT), listing(LISTING)).filter(pl.col("Code") == "72030")
    before, after = panel.filter(pl.col("Date") < D[5]), panel.filter(pl.col("Date") >= D[5])
    assert set(before["sector33"]) == {"3700"} and set(before["market"]) == {"0111"}
    assert set(after["sector33"]) == {"3650"} and set(after["market"]) == {"0112"}


def test_dates_before_the_first_listing_row_are_null_never_back_filled():
    panel = build_panel(quotes(CLOSES, SPLIT), listing(LISTING)).filter(pl.col("Code") == "130A0")
    first = panel.filter(pl.col("Date") < D[3])
    assert first.height == 1
    assert first.select("market", "sector33", "sector17").row(0) == (None, None, None)
    assert set(panel.filter(pl.col("Date") >= D[3])["sector33"]) == {"5250"}


def test_alphanumeric_code_flows_through():
    panel = build_panel(quotes(CLOSES, SPLIT), listing(LISTING))
    assert "130A0" in set(panel["Code"])
    assert panel.schema["Code"] == pl.Utf8


def test_synthetic_market_panel_if_available():
    synthetic = pytest.importorskip("atft_kedro.market.synthetic")
    tables = synthetic.generate_market("tiny", seed=0)
    dq = validate("daily_quotes", tables["daily_quotes"])
    li = validate("listed_info", tables["listed_info"])
    panel = build_panel(dq, li)
    assert panel.height == dq.height
    np.testing.assert_allclose(
        returns(panel, "close").drop_nulls().to_numpy(),
        returns(dq, "AdjustmentClose").drop_nulls().to_numpy(),
        rtol=1e-9,
    )
