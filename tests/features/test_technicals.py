import numpy as np
import pandas as pd
import pytest

from atft_kedro.features import build_features
from tests.features.helpers import assert_close, series
from tests.features.tables import make_panel


@pytest.fixture(scope="module")
def raw():
    panel = make_panel(n_codes=3, n_days=80, seed=7)
    code = panel["Code"][2]
    bars = {k: series(panel, code, k) for k in ("open", "high", "low", "close", "volume")}
    return bars, build_features(panel, cs_method="none"), code


def _wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder smoothing by the textbook recursion, NaN before n observations."""
    out, s, seen = np.full_like(x, np.nan), np.nan, 0
    for i, v in enumerate(x):
        if np.isnan(v):
            continue
        seen += 1
        s = v if seen == 1 else s + (v - s) / n
        if seen >= n:
            out[i] = s
    return out


def test_ma_gaps_by_hand(raw):
    bars, df, code = raw
    c = bars["close"]
    t = 70
    assert series(df, code, "sma_gap_20")[t] == pytest.approx(
        c[t] / c[t - 19 : t + 1].mean() - 1, rel=1e-4
    )
    ema = pd.Series(c).ewm(span=10, adjust=False).mean().to_numpy()
    assert series(df, code, "ema_gap_10")[t] == pytest.approx(c[t] / ema[t] - 1, rel=1e-4)
    cross = c[t - 4 : t + 1].mean() / c[t - 19 : t + 1].mean() - 1
    assert series(df, code, "sma_cross_5_20")[t] == pytest.approx(cross, rel=1e-4)


def test_range_volume_by_hand(raw):
    bars, df, code = raw
    o, h, lo, c, v = (bars[k] for k in ("open", "high", "low", "close", "volume"))
    assert_close(series(df, code, "hl_range"), (h - lo) / c)
    assert_close(series(df, code, "close_position"), (c - lo) / (h - lo))
    gap = np.r_[np.nan, o[1:] / c[:-1] - 1]
    assert_close(series(df, code, "gap_open"), gap)
    t = 30
    assert series(df, code, "volume_ratio_20")[t] == pytest.approx(
        v[t] / v[t - 19 : t + 1].mean(), rel=1e-5
    )


def test_rsi_atr_stoch_by_hand(raw):
    bars, df, code = raw
    h, lo, c = bars["high"], bars["low"], bars["close"]
    dc = np.r_[np.nan, np.diff(c)]
    up, down = (
        _wilder(np.where(np.isnan(dc), np.nan, np.maximum(dc, 0)), 14),
        _wilder(np.where(np.isnan(dc), np.nan, np.maximum(-dc, 0)), 14),
    )
    assert_close(series(df, code, "rsi_14"), up / (up + down), rtol=1e-4)
    prev = np.r_[np.nan, c[:-1]]
    tr = np.maximum.reduce([h - lo, np.abs(h - prev), np.abs(lo - prev)])
    assert_close(series(df, code, "atr_14"), _wilder(tr, 14) / c, rtol=1e-4)
    t = 50
    hi14, lo14 = h[t - 13 : t + 1].max(), lo[t - 13 : t + 1].min()
    assert series(df, code, "stoch_k_14")[t] == pytest.approx(
        (c[t] - lo14) / (hi14 - lo14), rel=1e-5
    )


def test_macd_and_bollinger_by_hand(raw):
    bars, df, code = raw
    c = pd.Series(bars["close"])
    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    # polars starts the signal EMA at the first MACD value (row 25), as does this reference
    signal = macd.iloc[25:].ewm(span=9, adjust=False).mean().reindex(c.index)
    t = 60
    expected = (macd[t] - signal[t]) / c[t]
    assert series(df, code, "macd_hist")[t] == pytest.approx(expected, rel=1e-3)
    window = c.iloc[t - 19 : t + 1]
    sd = window.std(ddof=1)
    assert series(df, code, "bb_pct_b_20")[t] == pytest.approx(
        (c[t] - window.mean() + 2 * sd) / (4 * sd), rel=1e-4
    )
    assert series(df, code, "bb_width_20")[t] == pytest.approx(4 * sd / window.mean(), rel=1e-4)
