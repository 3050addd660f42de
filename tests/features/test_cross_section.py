import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from atft_kedro.features import build_features, registry
from atft_kedro.features.cross_section import cs_normalise_exprs
from tests.features.tables import make_panel, make_statements, make_topix, make_trades_spec


def test_zscore_per_date_with_clip():
    df = pl.DataFrame({"Date": [1, 1, 1, 1, 2, 2, 2], "x": [1.0, 2.0, 3.0, None, 5.0, 5.0, 5.0]})
    out = df.with_columns(cs_normalise_exprs(["x"], "zscore", clip=0.9))["x"].to_list()
    assert out[:3] == pytest.approx([-0.9, 0.0, 0.9])  # (-1, 0, 1) clipped to 0.9
    assert out[3] is None
    assert out[4:] == [None, None, None]  # no spread: no score, not a fake 0


def test_rank_gauss():
    df = pl.DataFrame({"Date": [1] * 4, "x": [10.0, -3.0, 7.0, 0.0]})
    out = df.with_columns(cs_normalise_exprs(["x"], "rank_gauss", clip=5.0))["x"].to_numpy()
    expected = norm.ppf((np.array([4, 1, 3, 2]) - 0.5) / 4)
    np.testing.assert_allclose(out, expected)


@pytest.mark.parametrize("method", ["zscore", "rank_gauss"])
def test_normalised_features_have_cross_sectional_spread(method):
    panel = make_panel(n_codes=24, n_days=200, seed=21)
    df = build_features(
        panel, make_topix(panel), make_trades_spec(panel), make_statements(panel), cs_method=method
    )
    for spec in registry.FEATURES:
        if not spec.cs_normalised or spec.name.startswith("stmt_yoy"):
            continue  # year-on-year growth needs a year of filings; 200 days have none
        # every code has filed by day 40, and twice (news against the previous filing) by day 70
        warmup = {"statements": 40, "earnings": 70}.get(spec.family, spec.warmup)
        start = df["Date"].unique().sort()[warmup + 1]
        spread = (
            df.filter(pl.col("Date") >= start)
            .group_by("Date")
            .agg(pl.col(spec.name).fill_nan(None).std(), n=pl.col(spec.name).is_not_nan().sum())
            .filter(pl.col("n") >= 3)  # forecast_revision is undefined after a year-end filing
        )
        share = (spread[spec.name].fill_nan(0.0).fill_null(0.0) > 1e-6).mean()
        assert share >= 0.95, (spec.name, share)
    z = df.filter(pl.col("Date") == df["Date"].max())["vol_20d"].to_numpy()
    if method == "zscore":
        assert abs(z.mean()) < 1e-5 and z.std(ddof=1) == pytest.approx(1.0, rel=1e-4)


def test_market_features_are_left_raw():
    panel = make_panel(n_codes=5, n_days=80, seed=2)
    a = build_features(panel, make_topix(panel))
    b = build_features(panel, make_topix(panel), cs_method="none")
    assert a.select(registry.family_features("market")).equals(
        b.select(registry.family_features("market"))
    )
    assert not a["ret_20d"].equals(b["ret_20d"])


def test_grouped_zscore_equals_window_zscore():
    from atft_kedro.features.cross_section import cs_normalise

    rng = np.random.default_rng(4)
    dates = np.sort(rng.integers(0, 30, 600))
    x = rng.normal(0, 1, 600) * (1 + dates)  # the spread differs by date
    x[rng.random(600) < 0.2] = np.nan
    x[dates == 7] = 3.0  # a date without spread gets no score
    df = pl.DataFrame({"Date": dates, "x": x.astype(np.float32), "y": x[::-1].astype(np.float32)})
    ours = cs_normalise(df.clone(), ["x", "y"], "zscore", clip=2.0)
    ref = df.with_columns(pl.col("x", "y").fill_nan(None)).with_columns(
        e.cast(pl.Float32).fill_null(float("nan"))
        for e in cs_normalise_exprs(["x", "y"], "zscore", 2.0)
    )
    for c in ("x", "y"):
        np.testing.assert_allclose(ours[c].to_numpy(), ref[c].to_numpy(), rtol=1e-6, equal_nan=True)
    assert ours.filter(pl.col("Date") == 7)["x"].is_nan().all()
    assert ours["x"].max() == pytest.approx(2.0) and ours["x"].is_not_nan().sum() > 300
