import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from atft_kedro.evaluation.metrics import daily_ic, decile_returns, ic_summary, series_summary


def _day(d: int) -> date:
    return date(2024, 1, 1) + timedelta(days=d)


def _panel(rng: np.random.Generator, n_days: int = 5, n_stocks: int = 30) -> pl.DataFrame:
    p = rng.standard_normal((n_days, n_stocks))
    y = 0.3 * p + rng.standard_normal((n_days, n_stocks))
    y[0, :3] = np.nan  # missing targets are masked, not filled
    return pl.DataFrame(
        {
            "Date": [_day(d) for d in range(n_days) for _ in range(n_stocks)],
            "Code": [f"{1000 + i}0" for _ in range(n_days) for i in range(n_stocks)],
            "pred_1d": p.ravel(),
            "target_1d": y.ravel(),
        }
    )


def test_daily_ic_matches_scipy_pearson_and_spearman():
    preds = _panel(np.random.default_rng(0))
    daily = daily_ic(preds, "pred_1d", "target_1d", min_stocks=5)
    assert daily.n_skipped == 0 and daily.table.height == 5
    for row in daily.table.iter_rows(named=True):
        day = preds.filter(pl.col("Date") == row["Date"]).drop_nans()
        p, y = day["pred_1d"].to_numpy(), day["target_1d"].to_numpy()
        assert row["n"] == p.size
        assert row["ic"] == pytest.approx(stats.pearsonr(p, y).statistic, abs=1e-12)
        assert row["rank_ic"] == pytest.approx(stats.spearmanr(p, y).statistic, abs=1e-12)


def test_rank_ic_with_ties_uses_average_ranks():
    preds = pl.DataFrame(
        {
            "Date": [_day(0)] * 4,
            "Code": ["10000", "10010", "10020", "10030"],
            "pred_1d": [1.0, 2.0, 2.0, 10.0],
            "target_1d": [1.0, 3.0, 2.0, 2.0],
        }
    )
    row = daily_ic(preds, "pred_1d", "target_1d", min_stocks=2).table.row(0, named=True)
    # ranks (1, 2.5, 2.5, 4) and (1, 4, 2.5, 2.5): cov 2.25 / var 4.5 = 0.5 by hand
    assert row["rank_ic"] == pytest.approx(0.5)
    p, y = preds["pred_1d"].to_numpy(), preds["target_1d"].to_numpy()
    assert row["rank_ic"] == pytest.approx(stats.spearmanr(p, y).statistic)
    assert row["rank_ic"] != pytest.approx(stats.pearsonr(p, y).statistic)


def test_days_with_too_few_stocks_or_no_spread_are_skipped_and_counted():
    preds = _panel(np.random.default_rng(1), n_days=4, n_stocks=8)
    thin = pl.col("Date") == _day(1)
    flat = pl.col("Date") == _day(2)
    preds = preds.with_columns(
        target_1d=pl.when(thin & (pl.col("Code") > "10030")).then(None).otherwise("target_1d"),
        pred_1d=pl.when(flat).then(0.7).otherwise("pred_1d"),
    )
    daily = daily_ic(preds, "pred_1d", "target_1d", min_stocks=5)
    assert daily.n_skipped == 2
    assert set(daily.table["Date"].to_list()) == {_day(0), _day(3)}
    assert ic_summary(daily)["rank_ic"]["n_skipped"] == 2


def test_series_summary_hand_values():
    s = series_summary(np.array([0.1, -0.05, 0.2, np.nan]), n_skipped=1)
    mean, std = 0.25 / 3, np.std([0.1, -0.05, 0.2], ddof=1)
    assert s["mean"] == pytest.approx(mean)
    assert s["std"] == pytest.approx(std)
    assert s["icir"] == pytest.approx(mean / std)
    assert s["t_stat"] == pytest.approx(mean / (std / math.sqrt(3)))
    assert s["hit_rate"] == pytest.approx(2 / 3)
    assert (s["n_days"], s["n_skipped"]) == (3, 1)


def test_decile_returns_by_hand():
    # 2 days x 10 stocks, prediction = target: decile b holds exactly the b-th smallest target
    y = np.array([np.arange(10) * 0.01, np.arange(10)[::-1] * 0.02])
    preds = pl.DataFrame(
        {
            "Date": [_day(d) for d in range(2) for _ in range(10)],
            "Code": [f"{1000 + i}0" for _ in range(2) for i in range(10)],
            "pred_1d": y.ravel(),
            "target_1d": y.ravel(),
        }
    )
    out = decile_returns(preds, "pred_1d", "target_1d")
    expected = (np.sort(y[0]) + np.sort(y[1])) / 2
    np.testing.assert_allclose(out["mean_return"].to_numpy(), expected)
    assert out["decile"].to_list() == list(range(10))
    assert out["n_days"].to_list() == [2] * 10


def test_missing_column_error_names_table_and_column():
    with pytest.raises(ValueError, match="predictions: missing column 'pred_5d'"):
        daily_ic(_panel(np.random.default_rng(2)), "pred_5d", "target_1d")
