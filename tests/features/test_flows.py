import polars as pl
import pytest

from atft_kedro.features import build_features
from tests.features.tables import make_panel, make_trades_spec


def test_flows_effective_next_trading_day_by_section():
    panel = make_panel(n_codes=3, n_days=120, seed=4)
    spec = make_trades_spec(panel)
    df = build_features(panel, trades_spec=spec, cs_method="none")
    days = panel["Date"].unique().sort().to_list()
    published = spec.filter(pl.col("Section") == "TSEGrowth").sort("PublishedDate")
    week = published.row(5, named=True)
    p = days.index(week["PublishedDate"])
    growth_code = panel.filter(pl.col("market") == "0113")["Code"][0]
    rows = df.filter(pl.col("Code") == growth_code).sort("Date")
    expected = week["ForeignersBalance"] / week["ForeignersTotal"]
    # not on the publication day, but from the next trading day until the next table
    assert rows["flow_foreign_net"][p] != pytest.approx(expected)
    assert rows["flow_foreign_net"][p + 1] == pytest.approx(expected, rel=1e-5)
    assert rows["flow_foreign_net"][p + 5] == pytest.approx(expected, rel=1e-5)
    before_first = days.index(published["PublishedDate"][0])
    assert rows["is_flows_valid"][: before_first + 1].sum() == 0


def test_sections_differ():
    panel = make_panel(n_codes=3, n_days=120, seed=4)
    df = build_features(panel, trades_spec=make_trades_spec(panel), cs_method="none")
    last = df.filter(pl.col("Date") == df["Date"].max())
    assert last["flow_individual_net"].n_unique() == 3
    assert (last["is_flows_valid"] == 1).all()  # 13-week z-score warmed up by now
