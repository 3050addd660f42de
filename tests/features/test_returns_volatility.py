import math

import numpy as np
import polars as pl
import pytest

from atft_kedro.features import build_features, registry
from tests.features.helpers import assert_close, series
from tests.features.tables import make_panel


@pytest.fixture(scope="module")
def raw():
    panel = make_panel(n_codes=3, n_days=150, seed=5)
    return panel, build_features(panel, cs_method="none")


def test_returns_by_hand(raw):
    panel, df = raw
    code = panel["Code"][0]
    c = series(panel, code, "close")
    for h in (1, 5, 20, 120):
        expected = np.full_like(c, np.nan)
        expected[h:] = c[h:] / c[:-h] - 1
        assert_close(series(df, code, f"ret_{h}d"), expected)
    expected = np.full_like(c, np.nan)
    expected[5:] = np.log(c[5:] / c[:-5])
    assert_close(series(df, code, "log_ret_5d"), expected)


def test_volatility_by_hand(raw):
    panel, df = raw
    code = panel["Code"][1]
    c, h, lo = (series(panel, code, k) for k in ("close", "high", "low"))
    lr = np.diff(np.log(c))
    t = 40
    assert series(df, code, "vol_20d")[t] == pytest.approx(np.std(lr[t - 20 : t], ddof=1), rel=1e-5)
    assert series(df, code, "vol_5d")[t] == pytest.approx(np.std(lr[t - 5 : t], ddof=1), rel=1e-5)
    hl = np.log(h / lo) ** 2 / (4 * math.log(2))
    park = math.sqrt(hl[t - 19 : t + 1].mean())
    assert series(df, code, "parkinson_vol_20d")[t] == pytest.approx(park, rel=1e-5)


@pytest.mark.parametrize(
    "family", ["returns", "volatility", "ma_gap", "range_volume", "technicals"]
)
def test_warmup_matches_registry(raw, family):
    _, df = raw
    code = df["Code"][0]
    for spec in registry.FEATURES:
        if spec.family != family:
            continue
        values = series(df, code, spec.name)
        first = int(np.argmax(np.isfinite(values)))
        assert first == spec.warmup, spec.name


def test_zero_volume_day_keeps_last_close():
    panel = make_panel(n_codes=2, n_days=30, seed=1)
    day = panel["Date"].unique().sort()[10]
    hole = (pl.col("Date") == day) & (pl.col("Code") == panel["Code"][0])
    panel = panel.with_columns(
        [
            pl.when(hole).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ]
        + [pl.when(hole).then(0.0).otherwise(pl.col("volume")).alias("volume")]
    )
    df = build_features(panel, cs_method="none")
    row = df.filter(hole)
    assert row["ret_1d"][0] == 0.0
    assert math.isnan(row["hl_range"][0])
    assert row["is_range_volume_valid"][0] == 0
    nxt = df.filter(
        (pl.col("Date") == panel["Date"].unique().sort()[11]) & (pl.col("Code") == panel["Code"][0])
    )
    c = series(panel, panel["Code"][0], "close")
    assert nxt["ret_1d"][0] == pytest.approx(c[11] / c[9] - 1, rel=1e-5)
