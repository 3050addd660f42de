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


def _ragged_frame() -> pl.DataFrame:
    """Codes of different lengths, one starting mid-calendar, one of 2 rows, gaps and jumps."""
    rng = np.random.default_rng(3)
    parts = []
    for code, start, n, level in [
        ("1000", 0, 70, 5e5),
        ("2000", 25, 45, 20.0),
        ("3000", 3, 2, 1.0),
        ("4000", 0, 70, 3e3),
    ]:
        close = level * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        if code == "2000":
            close[rng.random(n) < 0.1] = np.nan  # missing bars inside a code
        parts.append(
            pl.DataFrame(
                {"Code": code, "t": np.arange(start, start + n), "close": close},
                schema_overrides={"close": pl.Float64},
            )
        )
    return pl.concat(parts).with_columns(pl.col("close").fill_nan(None)).sort("Code", "t")


def test_whole_column_windows_equal_per_code_windows():
    from atft_kedro.features.returns_volatility import (
        code_rows,
        lag,
        lead,
        rolling_max,
        rolling_min,
        rolling_std,
        sma,
    )

    frame = code_rows(_ragged_frame().lazy()).collect()
    x = pl.col("close")
    ours = frame.select(
        *[lag(x, k).alias(f"lag{k}") for k in (1, 5, 30)],
        *[lead(x, k).alias(f"lead{k}") for k in (1, 20)],
        *[sma(x, w).alias(f"sma{w}") for w in (2, 5, 20, 60)],
        *[rolling_std(x, w).alias(f"std{w}") for w in (5, 20)],
        rolling_max(x, 14).alias("max14"),
        rolling_min(x, 14).alias("min14"),
    )
    per_code = frame.select(
        *[x.shift(k).over("Code").alias(f"lag{k}") for k in (1, 5, 30)],
        *[x.shift(-k).over("Code").alias(f"lead{k}") for k in (1, 20)],
        *[x.rolling_mean(w, min_samples=w).over("Code").alias(f"sma{w}") for w in (2, 5, 20, 60)],
        *[x.rolling_std(w, min_samples=w).over("Code").alias(f"std{w}") for w in (5, 20)],
        x.rolling_max(14, min_samples=14).over("Code").alias("max14"),
        x.rolling_min(14, min_samples=14).over("Code").alias("min14"),
    )
    for name in ours.columns:
        a, b = ours[name], per_code[name]
        assert a.is_null().equals(b.is_null()), name
        assert b.drop_nulls().len() > 0, name  # the comparison is not vacuous
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, err_msg=name)
    assert frame.filter(pl.col("Code") == "2000")["_row"].to_list() == list(range(45))


def test_forward_filled_close_never_crosses_codes():
    from atft_kedro.features.returns_volatility import prepare_bars

    frame = _ragged_frame().with_columns(
        open=pl.col("close"),
        high=pl.col("close"),
        low=pl.col("close"),
        volume=pl.lit(1.0),
        turnover=pl.lit(1.0),
    )
    first = frame.group_by("Code").agg(pl.col("t").min())
    frame = frame.with_columns(  # each code opens with a missing close
        close=pl.when(pl.col("t").is_in(first["t"].implode())).then(None).otherwise(pl.col("close"))
    )
    ours = prepare_bars(frame.lazy()).collect()
    expected = frame.select(
        pl.when(pl.col("close") > 0).then(pl.col("close")).forward_fill().over("Code")
    )
    assert ours["c"].is_null().equals(expected.to_series().is_null())
    assert ours.group_by("Code").agg(pl.col("c").first().is_null())["c"].all()
    np.testing.assert_allclose(ours["c"].to_numpy(), expected.to_series().to_numpy(), rtol=0)
