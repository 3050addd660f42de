import numpy as np
import polars as pl
import pytest

from atft_kedro.features import build_features
from tests.features.tables import make_panel


def test_sector_equal_weight_and_relative():
    panel = make_panel(n_codes=8, n_days=40, seed=3)
    df = build_features(panel, cs_method="none")
    by_hand = df.group_by("Date", "sector33").agg(
        pl.col("ret_1d").mean().alias("hand"),
        (pl.col("ret_1d") > 0).cast(pl.Float64).mean().alias("hand_breadth"),
    )
    joined = df.join(by_hand, on=["Date", "sector33"]).drop_nans("ret_1d")
    np.testing.assert_allclose(joined["sec_ret_1d"], joined["hand"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(joined["sec_breadth"], joined["hand_breadth"])
    np.testing.assert_allclose(
        joined["rel_to_sec_1d"], joined["ret_1d"] - joined["hand"], rtol=1e-3, atol=1e-6
    )
    sector = by_hand.filter(pl.col("sector33") == "0050").sort("Date")["hand"].to_numpy()
    t = 30
    expected = np.prod(1 + sector[t - 4 : t + 1]) - 1
    got = df.filter(pl.col("sector33") == "0050").sort("Date")
    got = got.filter(pl.col("Date") == got["Date"].unique().sort()[t])["sec_mom_5d"][0]
    assert got == pytest.approx(expected, rel=1e-4)


def test_sector_membership_is_point_in_time():
    panel = make_panel(n_codes=8, n_days=40, seed=3)
    days = panel["Date"].unique().sort()
    mover = panel["Code"][0]
    switched = panel.with_columns(
        sector33=pl.when((pl.col("Code") == mover) & (pl.col("Date") >= days[25]))
        .then(pl.lit("9999"))
        .otherwise(pl.col("sector33"))
    )
    a, b = build_features(panel, cs_method="none"), build_features(switched, cs_method="none")
    before = pl.col("Date") < days[25]
    assert a.filter(before).select("sec_ret_1d").equals(b.filter(before).select("sec_ret_1d"))
    after = b.filter((pl.col("Code") == mover) & (pl.col("Date") >= days[25]))
    np.testing.assert_allclose(after["sec_ret_1d"], after["ret_1d"])  # alone in its new sector
