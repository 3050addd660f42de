"""Windows whose values do not move: exact zeros, not running-sum residue, whatever came before.

A rolling mean keeps one running sum down the whole column, so on a window of equal values its
``E[x²] − E[x]²`` is the residue of earlier rows (including other codes' later dates), and any
test of it against 0 flips with them.
"""

import numpy as np
import polars as pl
import pytest

from atft_kedro.features import build_features
from atft_kedro.features.cross_section import cs_normalise_exprs
from atft_kedro.features.returns_volatility import (
    code_rows,
    flat,
    negligible,
    rolling_std,
    sma,
    variance,
)
from tests.features.helpers import series
from tests.features.tables import make_panel, make_topix, with_flat_stocks


def _two_codes(noise: np.ndarray, flat_value: float, n_flat: int = 80) -> pl.DataFrame:
    """Code "1000" with the values ``noise``, then code "2000" constant at ``flat_value``."""
    return code_rows(
        pl.DataFrame(
            {
                "Code": ["1000"] * len(noise) + ["2000"] * n_flat,
                "x": np.r_[noise, np.full(n_flat, flat_value)],
            }
        ).lazy()
    ).collect()


@pytest.mark.parametrize("flat_value", [0.0, 0.0123, 1234.5])
def test_flat_window_moments_are_exact_whatever_came_before(flat_value):
    x, w = pl.col("x"), 20
    outputs = []
    for seed in range(5):  # the code before differs: its residue in the running sums differs
        noise = np.random.default_rng(seed).normal(0.0, 50.0, 300) * np.r_[1.0, 1e-3][seed % 2]
        frame = _two_codes(noise, flat_value)
        out = frame.select(
            "Code",
            flat(x, w, floor=1.0).alias("flat"),
            sma(x, w, exact_if_flat=True).alias("mean"),
            rolling_std(x, w).alias("std"),
            variance(sma(x * x, w), sma(x, w), flat(x, w)).alias("var"),
        ).filter(pl.col("Code") == "2000")
        outputs.append(out)
        full = out[w - 1 :]
        assert full["flat"].all() and out["flat"][: w - 1].is_null().all()
        assert (full["mean"] == flat_value).all()
        assert (full["std"] == 0.0).all() and (full["var"] == 0.0).all()
    assert all(o.equals(outputs[0]) for o in outputs)


def test_a_return_of_1e17_is_a_price_that_did_not_move():
    x, w = pl.col("x"), 5
    values = np.zeros(12)
    values[8] = 1e-17  # a ratio of two prices that differ in their last bit, minus 1
    frame = _two_codes(np.ones(10), 0.0, n_flat=12).with_columns(
        x=pl.Series(np.r_[np.ones(10), values])
    )
    out = frame.select("Code", flat(x, w, floor=1.0), flat(x, w).alias("own_scale"))
    out = out.filter(pl.col("Code") == "2000")
    assert out["x"][w - 1 :].to_list() == [True] * (12 - w + 1)
    assert out["own_scale"][8:].to_list() == [False] * 4  # on its own scale 1e-17 is a step
    assert negligible(0.0, 0.0) and negligible(1e-10, 1.0) and not negligible(1e-6, 1.0)


@pytest.fixture(scope="module")
def flat_stocks():
    """Raw features of a panel with two stocks whose price does not move for weeks."""
    panel = with_flat_stocks(make_panel())
    return build_features(panel, make_topix(panel), cs_method="none")


@pytest.mark.parametrize(("code", "first"), [("13205", 11), ("13505", 33)])
def test_a_stock_whose_price_does_not_move(flat_stocks, code, first):
    def feature(name):
        return series(flat_stocks, code, name)[first + 60 : 125]  # every window inside the stretch

    assert np.all(feature("beta_60d") == 0.0) and np.all(feature("idio_vol_60d") == 0.0)
    assert np.all(feature("beta_resid_1d") == 0.0)
    assert np.isnan(feature("corr_mkt_60d")).all()  # no spread: undefined, masked
    assert np.all(feature("is_stock_market_valid") == 0)
    for name in ("vol_5d", "vol_20d", "vol_60d", "parkinson_vol_5d", "parkinson_vol_20d"):
        assert np.all(feature(name) == 0.0), name
    for name in ("vol_ratio_5_20", "bb_pct_b_20", "stoch_k_14"):
        assert np.isnan(feature(name)).all(), name
    assert np.all(feature("bb_width_20") == 0.0) and np.all(feature("close_position") == 0.5)
    # the stocks that move keep a correlation
    assert np.isfinite(series(flat_stocks, "13300", "corr_mkt_60d")[first + 60 : 125]).all()


def test_days_without_trades_give_no_volume_ratio():
    """Five sessions without a trade (no prices, zero volume): 0 / 0, never 0 / residue."""
    panel = make_panel(n_codes=4, n_days=80, seed=5)
    days = panel["Date"].unique().sort()
    code = panel["Code"].unique().sort()[2]
    idle = (pl.col("Code") == code) & pl.col("Date").is_in(days[40:50].implode())
    panel = panel.with_columns(
        *[
            pl.when(idle).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ],
        *[pl.when(idle).then(0.0).otherwise(pl.col(c)).alias(c) for c in ("volume", "turnover")],
    )
    df = build_features(panel, make_topix(panel), cs_method="none")
    ratio = series(df, code, "volume_ratio_5")
    assert np.isnan(ratio[44:50]).all() and np.isfinite(ratio[50:]).all()
    assert np.all(series(df, code, "vol_5d")[45:50] == 0.0)  # the close is carried: no move


@pytest.mark.parametrize("method", ["zscore", "rank_gauss"])
def test_values_equal_up_to_rounding_have_no_cross_sectional_spread(method):
    df = pl.DataFrame(
        {"Date": [1] * 5 + [2] * 3, "x": [0.3, 0.1 + 0.2, 0.3, 0.3, 0.3, 1.0, 2.0, 4.0]}
    )
    out = df.with_columns(cs_normalise_exprs(["x"], method, clip=5.0))["x"]
    assert out[:5].is_null().all()  # 0.1 + 0.2 is 0.3 up to rounding: no spread, no score
    assert out[5:].is_not_null().all()
