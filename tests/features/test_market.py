import numpy as np
import polars as pl
import pytest

from atft_kedro.features import build_features
from tests.features.helpers import assert_close, series
from tests.features.tables import make_panel, make_topix


@pytest.fixture(scope="module")
def data():
    panel = make_panel(n_codes=4, n_days=100, seed=11)
    topix = make_topix(panel)
    return panel, topix, build_features(panel, topix, cs_method="none")


def test_market_features_from_topix(data):
    panel, topix, df = data
    code = panel["Code"][0]
    m_close = topix.sort("Date")["Close"].to_numpy()
    m = np.r_[np.nan, m_close[1:] / m_close[:-1] - 1]
    assert_close(series(df, code, "mkt_ret_1d"), m)
    t = 80
    assert series(df, code, "mkt_vol_20d")[t] == pytest.approx(
        np.std(m[t - 19 : t + 1], ddof=1), rel=1e-4
    )
    dd = m_close[t] / m_close[t - 59 : t + 1].max() - 1
    assert series(df, code, "mkt_drawdown_60")[t] == pytest.approx(dd, rel=1e-4, abs=1e-7)
    bull = float(m_close[t] > m_close[t - 59 : t + 1].mean())
    assert series(df, code, "mkt_bull_regime")[t] == bull
    assert (df["is_topix_valid"] == 1).all()
    # market-wide: one value per date
    assert df.group_by("Date").agg(pl.col("mkt_ret_20d").n_unique())["mkt_ret_20d"].max() == 1


def test_beta_alpha_by_hand(data):
    panel, topix, df = data
    code = panel["Code"][3]
    c = series(panel, code, "close")
    m_close = topix.sort("Date")["Close"].to_numpy()
    r, m = c[1:] / c[:-1] - 1, m_close[1:] / m_close[:-1] - 1
    t = 90  # row t uses returns of rows t-59..t, i.e. r[t-60 : t]
    rw, mw = r[t - 60 : t], m[t - 60 : t]
    beta = np.cov(rw, mw, ddof=0)[0, 1] / np.var(mw)
    assert series(df, code, "beta_60d")[t] == pytest.approx(beta, rel=1e-4)
    assert series(df, code, "beta_resid_1d")[t] == pytest.approx(
        rw[-1] - beta * mw[-1], rel=1e-3, abs=1e-6
    )
    idio = np.sqrt(np.var(rw) - beta**2 * np.var(mw))
    assert series(df, code, "idio_vol_60d")[t] == pytest.approx(idio, rel=1e-4)
    assert series(df, code, "corr_mkt_60d")[t] == pytest.approx(np.corrcoef(rw, mw)[0, 1], rel=1e-4)


def test_missing_topix_uses_equal_weight_index(data):
    panel, _, _ = data
    df = build_features(panel, cs_method="none")
    assert (df["is_topix_valid"] == 0).all()
    mean_r = (
        df.group_by("Date").agg(pl.col("ret_1d").mean(), pl.col("mkt_ret_1d").first()).drop_nans()
    )
    assert mean_r.height > 90
    np.testing.assert_allclose(mean_r["mkt_ret_1d"], mean_r["ret_1d"], rtol=1e-4)
    assert df.filter(pl.col("Date") == df["Date"].max())["is_market_valid"].min() == 1
