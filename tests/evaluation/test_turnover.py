"""Turnover control: causal smoothing, k-session rebalancing, and a choice made on validation days."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from atft_kedro.errors import ParameterError
from atft_kedro.evaluation.backtest import long_short_returns
from atft_kedro.evaluation.evaluate import EvaluationConfig
from atft_kedro.evaluation.turnover import (
    RAW,
    BookConfig,
    Setting,
    book_on_test_days,
    choose,
    controlled_book,
    daily_weights,
    ema_over_days,
    grids,
    hold_every,
    smoothed,
)

CFG = EvaluationConfig(cost_bps=10.0, quantile=0.1, min_stocks=5, n_boot=200)
BOOK = BookConfig(half_lives=(0.0, 2.0, 10.0), rebalance_every=(1, 5))


def test_ema_over_days_by_hand():
    # half-life 1 session: a = 1/2. Stock 0 misses day 2 (keeps its state); stock 1 starts on day 2.
    s = np.array([[0.5, np.nan], [-0.5, np.nan], [np.nan, 0.2], [0.5, 0.4]])
    e = ema_over_days(s, 1.0)
    expected = np.array([[0.5, np.nan], [0.0, np.nan], [np.nan, 0.2], [0.25, 0.3]])
    np.testing.assert_allclose(e, expected, atol=1e-12)


def _days(n: int, start: date = date(2023, 1, 2)) -> list[date]:
    return [start + timedelta(days=d) for d in range(n)]


def test_smoothing_averages_the_daily_ranks_by_hand():
    # day 1 ranks A > B > C → 0.5, 0, −0.5; day 2 reversed; half-life 1 → day 2 all 0
    table = pl.DataFrame(
        {
            "Date": [d for d in _days(2) for _ in range(3)],
            "Code": ["A", "B", "C"] * 2,
            "pred_1d": [3.0, 2.0, 1.0, 10.0, 20.0, 30.0],
        }
    )
    out = smoothed(table, "pred_1d", 1.0)
    np.testing.assert_allclose(out["pred_1d"], [0.5, 0.0, -0.5, 0.0, 0.0, 0.0], atol=1e-12)
    assert smoothed(table, "pred_1d", 0.0).equals(table), "half-life 0: the raw prediction"


def test_hold_every_keeps_the_book_of_each_blocks_first_day():
    w = np.arange(5.0)[:, None] * np.ones((1, 2))
    np.testing.assert_array_equal(hold_every(w, 2)[:, 0], [0, 0, 2, 2, 4])
    np.testing.assert_array_equal(hold_every(w, 1), w)


def market(
    n_days: int = 240, n_stocks: int = 60, persistence: float = 0.95, seed: int = 0
) -> pl.DataFrame:
    """Two folds, each 60 validation then 60 test days: pred = slow signal + daily noise; the
    next-day return is driven by the slow signal (an edge that lasts, too small to pay for a
    daily turnover of 1.6 at 10 bps)."""
    rng = np.random.default_rng(seed)
    signal = np.zeros((n_days, n_stocks))
    signal[0] = rng.standard_normal(n_stocks)
    for t in range(1, n_days):
        signal[t] = persistence * signal[t - 1] + np.sqrt(1 - persistence**2) * rng.standard_normal(
            n_stocks
        )
    pred = signal + 1.5 * rng.standard_normal((n_days, n_stocks))
    target = 0.001 * signal + 0.01 * rng.standard_normal((n_days, n_stocks))
    block = np.repeat(["val", "test", "val", "test"], n_days // 4)
    fold = np.repeat([0, 0, 1, 1], n_days // 4)
    return pl.DataFrame(
        {
            "Date": np.repeat(np.array(_days(n_days), dtype="datetime64[D]"), n_stocks),
            "Code": [f"{1300 + i}0" for _ in range(n_days) for i in range(n_stocks)],
            "fold": np.repeat(fold, n_stocks).astype(np.int32),
            "block": np.repeat(block, n_stocks),
            "pred_1d": pred.ravel(),
            "target_1d": target.ravel(),
        }
    ).with_columns(pl.col("Date").cast(pl.Date))


def _split(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        table.filter(pl.col("block") == "test").drop("block"),
        table.filter(pl.col("block") == "val").drop("block"),
    )


def test_the_raw_setting_is_the_daily_quantile_book():
    test, _ = _split(market())
    raw = long_short_returns(
        test,
        "pred_1d",
        "target_1d",
        quantile=CFG.quantile,
        cost_bps=CFG.cost_bps,
        min_stocks=CFG.min_stocks,
    ).daily
    ours = book_on_test_days(test, {0: RAW, 1: RAW}, CFG)
    assert ours.equals(raw)


def test_a_lasting_edge_is_traded_slowly_and_earns_more_after_costs():
    test, val = _split(market())
    book = controlled_book(test, val, CFG, BOOK, np.random.default_rng(0))
    raw = long_short_returns(
        test,
        "pred_1d",
        "target_1d",
        quantile=CFG.quantile,
        cost_bps=CFG.cost_bps,
        min_stocks=CFG.min_stocks,
    )
    raw_turnover = raw.daily["turnover"].mean()
    assert {f: b["chosen"]["half_life"] > 0 for f, b in book["folds"].items()} == {
        "0": True,
        "1": True,
    }
    assert book["net"]["avg_turnover"] < raw_turnover / 3
    raw_sharpe = raw.daily["net"].mean() / raw.daily["net"].std() * np.sqrt(252)
    lo, hi = book["net_sharpe_ci95"]
    assert raw_sharpe < 0 < lo < book["net"]["sharpe"] < hi, "costs eat the raw book's edge"
    assert len(book["folds"]["0"]["validation"]) == len(BOOK.half_lives) * len(BOOK.rebalance_every)


def test_the_choice_never_reads_test_days():
    table = market()
    test, val = _split(table)
    base = controlled_book(test, val, CFG, BOOK, np.random.default_rng(0))
    rng = np.random.default_rng(5)
    shuffled = test.with_columns(
        target_1d=pl.Series(rng.permutation(test["target_1d"].to_numpy())),
        pred_1d=-pl.col("pred_1d"),
    )
    moved = controlled_book(shuffled, val, CFG, BOOK, np.random.default_rng(0))
    assert moved["folds"] == base["folds"], "same settings and validation figures"
    assert moved["net"]["sharpe"] != base["net"]["sharpe"], "the test days did change"


def test_the_book_on_day_t_ignores_later_predictions():
    test, _ = _split(market())
    test = test.filter(pl.col("fold") == 0)
    dates, codes = grids(test)
    t = dates["Date"][30]
    later = test.with_columns(
        pred_1d=pl.when(pl.col("Date") > t).then(-pl.col("pred_1d") * 3).otherwise("pred_1d")
    )
    for half_life in (2.0, 10.0):
        base = hold_every(daily_weights(test, half_life, CFG, dates, codes), 5)
        moved = hold_every(daily_weights(later, half_life, CFG, dates, codes), 5)
        np.testing.assert_array_equal(base[:31], moved[:31])
        assert not np.array_equal(base[31:], moved[31:])


def test_a_fold_without_validation_predictions_has_no_controlled_book():
    test, val = _split(market())
    assert (
        controlled_book(test, val.filter(pl.col("fold") == 0), CFG, BOOK, np.random.default_rng(0))
        is None
    )
    assert controlled_book(test, None, CFG, BOOK, np.random.default_rng(0)) is None


def test_choose_takes_the_first_best_finite_value():
    rows = [
        {"half_life": 0.0, "rebalance_every": 1, "net_sharpe": 0.5},
        {"half_life": 2.0, "rebalance_every": 1, "net_sharpe": 1.0},
        {"half_life": 5.0, "rebalance_every": 1, "net_sharpe": 1.0},
        {"half_life": 10.0, "rebalance_every": 1, "net_sharpe": None},
    ]
    assert choose(rows, "net_sharpe") == Setting(2.0, 1)
    assert choose([{**rows[3]}], "net_sharpe") == RAW


def test_book_parameters_are_checked():
    assert BookConfig.from_params({"half_lives": [0, 5]}).half_lives == (0.0, 5.0)
    with pytest.raises(ParameterError, match="reporting.book.half_lives"):
        BookConfig.from_params({"half_lives": [-1]})
    with pytest.raises(ParameterError, match="reporting.book.rebalance_every"):
        BookConfig.from_params({"rebalance_every": [0]})
    with pytest.raises(ParameterError, match="reporting.book.choose_by"):
        BookConfig.from_params({"choose_by": "gross_sharpe"})
    with pytest.raises(ParameterError, match=r"unknown key\(s\) \['half_life'\]"):
        BookConfig.from_params({"half_life": [1]})
