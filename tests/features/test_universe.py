"""The investable universe: price floor, median turnover, tick size as a share of price."""

import numpy as np
import polars as pl
import pytest

from atft_kedro.errors import ParameterError
from atft_kedro.features import build_features
from atft_kedro.features.universe import (
    UniverseConfig,
    on_tse_grid_share,
    resolve_rules,
    resolve_tick_rule,
    tse_tick,
)
from tests.features.tables import make_panel


def test_tse_tick_schedule_at_its_boundaries():
    prices = [1.0, 3_000.0, 3_001.0, 5_000.0, 5_001.0, 30_000.0, 30_001.0, 60_000.0, 1e9]
    ticks = pl.select(tse_tick(pl.lit(pl.Series(prices)))).to_series().to_list()
    assert ticks == [1.0, 1.0, 5.0, 5.0, 10.0, 10.0, 50.0, 100.0, 100_000.0]


def test_auto_tick_rule_follows_the_grid_the_closes_sit_on():
    on_grid = pl.Series([100.0, 2_999.0, 3_005.0, 12_340.0])
    off_grid = pl.Series([1.79, 1.80, 101.37, 2_000.0])
    assert on_tse_grid_share(on_grid) == 1.0
    assert resolve_tick_rule(UniverseConfig(), on_grid) == "tse"
    assert resolve_tick_rule(UniverseConfig(), off_grid) == "observed"
    assert resolve_tick_rule(UniverseConfig(tick="tse"), off_grid) == "tse"


def test_unknown_universe_keys_and_rules_are_parameter_errors():
    with pytest.raises(ParameterError, match="min_prise"):
        UniverseConfig.from_params({"min_prise": 1.0})
    with pytest.raises(ParameterError, match="universe.tick"):
        UniverseConfig.from_params({"tick": "exchange"})


def _universe(panel: pl.DataFrame, **cfg) -> pl.DataFrame:
    out = build_features(panel, horizons=(1,), universe=UniverseConfig(**cfg))
    return out.select("Date", "Code", "universe").sort("Code", "Date")


def test_each_threshold_excludes_exactly_its_rows():
    panel = make_panel(n_codes=4, n_days=60, seed=3)  # closes ~100-400, turnover ~1e6-4e7
    everything = dict(
        min_price=0.0, min_turnover=0.0, max_tick_share=1.0, tick="tse", floors="absolute"
    )
    base = _universe(panel, **everything)
    warm = base.join(
        base.group_by("Code").agg(pl.col("Date").sort().get(19).alias("first")), on="Code"
    ).filter(pl.col("Date") >= pl.col("first"))
    assert (warm["universe"] == 1).all(), "no threshold: every row with a full turnover window"
    early = base.join(warm, on=["Date", "Code"], how="anti")
    assert early.height and (early["universe"] == 0).all()

    # price floor: rows whose quoted close is below it, and only those
    floor = float(panel["close"].median())
    got = _universe(panel, **{**everything, "min_price": floor})
    joined = got.join(panel.select("Date", "Code", "close"), on=["Date", "Code"])
    joined = joined.join(warm.select("Date", "Code"), on=["Date", "Code"])
    assert (joined["universe"] == (joined["close"] >= floor).cast(pl.Int8)).all()

    # turnover: the trailing 20-session median, known at t
    tv = panel.sort("Code", "Date").with_columns(
        med=pl.col("turnover").rolling_median(20, min_samples=20).over("Code")
    )
    level = float(tv["med"].drop_nulls().median())
    got = _universe(panel, **{**everything, "min_turnover": level})
    joined = got.join(tv.select("Date", "Code", "med"), on=["Date", "Code"]).drop_nulls("med")
    assert (joined["universe"] == (joined["med"] >= level).cast(pl.Int8)).all()

    # 1-yen tick as a share of price: at most 0.5% keeps closes >= 200 yen
    got = _universe(panel, **{**everything, "max_tick_share": 0.005})
    joined = got.join(panel.select("Date", "Code", "close"), on=["Date", "Code"])
    joined = joined.join(warm.select("Date", "Code"), on=["Date", "Code"])
    assert (joined["universe"] == (joined["close"] >= 200.0).cast(pl.Int8)).all()


def test_observed_tick_catches_a_coarse_grid():
    """A cheap stock quoted on a 0.01 grid (1.79 moves in 0.56% steps) leaves the universe under
    the observed tick rule; the same path on a fine grid stays in."""
    panel = make_panel(n_codes=2, n_days=60, seed=5)
    cheap = panel.with_columns(pl.col("open", "high", "low", "close") / 100.0)
    coarse = cheap.with_columns(pl.col("open", "high", "low", "close").round(2))
    fine = cheap.with_columns(pl.col("open", "high", "low", "close").round(5))
    cfg = dict(
        min_price=0.0, min_turnover=0.0, max_tick_share=0.005, tick="observed", floors="absolute"
    )
    late = pl.col("Date") >= panel["Date"].unique().sort()[25]
    assert _universe(coarse, **cfg).filter(late)["universe"].mean() < 0.2
    assert _universe(fine, **cfg).filter(late)["universe"].mean() == 1.0


def test_universe_uses_no_future_data():
    panel = make_panel(n_codes=3, n_days=80, seed=6)
    cut = panel["Date"].unique().sort()[50]
    later = pl.col("Date") > cut
    shocked = panel.with_columns(
        pl.when(later).then(pl.col(c) * 7.0).otherwise(pl.col(c)) for c in ("close", "turnover")
    )
    cfg = dict(min_price=150.0, min_turnover=1e7, tick="tse", floors="absolute")
    a = _universe(panel, **cfg).filter(pl.col("Date") <= cut)
    b = _universe(shocked, **cfg).filter(pl.col("Date") <= cut)
    assert a.equals(b)
    assert np.unique(a["universe"].to_numpy()).size == 2, "the test must exercise both outcomes"


def test_auto_floors_follow_the_grid_and_bad_floor_parameters_are_errors():
    on_grid = pl.Series([100.0, 2_999.0, 3_005.0, 12_340.0])
    off_grid = pl.Series([1.79, 1.80, 101.37, 2_000.0])
    assert resolve_rules(UniverseConfig(), on_grid) == ("tse", "absolute")
    assert resolve_rules(UniverseConfig(), off_grid) == ("observed", "relative")
    assert resolve_rules(UniverseConfig(floors="absolute"), off_grid) == ("observed", "absolute")
    with pytest.raises(ParameterError, match="universe.floors"):
        UniverseConfig.from_params({"floors": "yen"})
    with pytest.raises(ParameterError, match="universe.turnover_quantile"):
        UniverseConfig.from_params({"turnover_quantile": 1.0})


def _dollar_panel(n_codes: int = 30, n_days: int = 80, seed: int = 7) -> pl.DataFrame:
    """A market quoted in dollars: closes ~0.7-20, turnover ~1e3-1e6 (yen floors keep nothing)."""
    panel = make_panel(n_codes=n_codes, n_days=n_days, seed=seed)
    return panel.with_columns(pl.col("open", "high", "low", "close", "turnover") / 150.0)


def test_relative_floors_keep_a_sensible_share_of_a_market_in_another_currency():
    panel = _dollar_panel()
    late = pl.col("Date") >= panel["Date"].unique().sort()[25]  # past the turnover window
    yen = _universe(panel, floors="absolute").filter(late)["universe"].mean()
    auto = _universe(panel).filter(late)
    assert yen == 0.0, "100-yen and 1e8-yen floors on dollar prices: nothing left"
    assert 0.6 < auto["universe"].mean() < 0.85, "about (1 - 0.05) x (1 - 0.2) of each day"
    per_day = auto.group_by("Date").agg(pl.col("universe").sum())["universe"]
    assert per_day.min() >= 15, "every day keeps about three quarters of its 30 stocks"


def test_relative_floors_are_the_days_quantiles_by_hand():
    panel = _dollar_panel()
    cfg = dict(floors="relative", price_quantile=0.3, turnover_quantile=0.5, max_tick_share=1.0)
    got = _universe(panel, **cfg)
    tv = panel.sort("Code", "Date").with_columns(
        med=pl.col("turnover").rolling_median(20, min_samples=20).over("Code")
    )
    expected = tv.with_columns(
        keep=(pl.col("close") >= pl.col("close").quantile(0.3, "linear").over("Date"))
        & (pl.col("med") >= pl.col("med").quantile(0.5, "linear").over("Date"))
    ).select("Date", "Code", keep=pl.col("keep").fill_null(False).cast(pl.Int8))
    joined = got.join(expected, on=["Date", "Code"])
    assert joined.height == panel.height
    mismatch = joined.filter(pl.col("universe") != pl.col("keep"))
    assert mismatch.height == 0, mismatch.head()


def test_relative_floors_use_no_future_data():
    panel = _dollar_panel(n_codes=12)
    cut = panel["Date"].unique().sort()[50]
    shocked = panel.with_columns(
        pl.when(pl.col("Date") > cut).then(pl.col(c) * 7.0).otherwise(pl.col(c))
        for c in ("close", "turnover")
    )
    cfg = dict(floors="relative", price_quantile=0.3, turnover_quantile=0.3)
    a = _universe(panel, **cfg).filter(pl.col("Date") <= cut)
    b = _universe(shocked, **cfg).filter(pl.col("Date") <= cut)
    assert a.equals(b)
    assert np.unique(a["universe"].to_numpy()).size == 2, "the test must exercise both outcomes"
