from datetime import date

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.backtest import long_short_returns, performance, return_stats

CODES = ["10000", "10010", "10020", "10030", "10040", "10050"]  # stocks A..F
DAYS = [date(2024, 1, 4), date(2024, 1, 5), date(2024, 1, 9)]
PRED = np.array([[6, 5, 4, 3, 2, 1], [6, 3, 5, 4, 1, 2], [1, 2, 3, 4, 5, 6]], dtype=float)
RET = np.array(
    [
        [0.02, 0.01, 0.00, 0.00, -0.01, -0.03],
        [0.01, 0.05, 0.03, 0.00, 0.02, -0.01],
        [0.01, 0.02, 0.00, 0.00, 0.01, 0.03],
    ]
)


def _table(pred=PRED, ret=RET, **extra) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "Date": [d for d in DAYS for _ in CODES],
            "Code": CODES * len(DAYS),
            "pred_1d": pred.ravel(),
            "target_1d": ret.ravel(),
            **{k: v.ravel() for k, v in extra.items()},
        }
    )


def test_quantile_long_short_by_hand():
    # k = floor(0.34 * 6) = 2 per side, weights ±0.25
    # day 1: long A,B short E,F; day 2: long A,C short E,F; day 3: long F,E short A,B
    bt = long_short_returns(
        _table(), "pred_1d", "target_1d", quantile=0.34, cost_bps=10.0, min_stocks=2
    )
    d = bt.daily
    np.testing.assert_allclose(d["gross"], [0.0175, 0.0075, 0.0025], atol=1e-12)
    # day 1 enters from cash (Σ|w| = 1); day 2 swaps B→C (0.25 + 0.25);
    # day 3: A +.25→−.25, B 0→−.25, C .25→0, E −.25→+.25, F −.25→+.25 = 2.0
    np.testing.assert_allclose(d["turnover"], [1.0, 0.5, 2.0], atol=1e-12)
    np.testing.assert_allclose(d["cost"], [0.001, 0.0005, 0.002], atol=1e-12)
    np.testing.assert_allclose(d["net"], [0.0165, 0.007, 0.0005], atol=1e-12)
    assert d["n_long"].to_list() == [2, 2, 2] and d["n_short"].to_list() == [2, 2, 2]
    assert (bt.method, bt.periods_per_year) == ("daily", 252)


def test_jpx_weights_by_hand():
    # m = min(top_n=2, 6 // 2) = 2; raw weights (2, 1) → (1/3, 1/6) per side
    bt = long_short_returns(
        _table(), "pred_1d", "target_1d", scheme="jpx", top_n=2, cost_bps=0.0, min_stocks=2
    )
    day1 = (0.02 / 3 + 0.01 / 6) - (-0.03 / 3 - 0.01 / 6)
    day2 = (0.01 / 3 + 0.03 / 6) - (0.02 / 3 - 0.01 / 6)  # E (lowest) carries 1/3
    day3 = (0.03 / 3 + 0.01 / 6) - (0.01 / 3 + 0.02 / 6)
    np.testing.assert_allclose(bt.daily["gross"], [day1, day2, day3], atol=1e-12)
    np.testing.assert_allclose(bt.daily["net"], bt.daily["gross"])


def test_jpx_equals_kaggle_spread_return_up_to_its_scale():
    rng = np.random.default_rng(0)
    n, m = 500, 200
    pred, ret = rng.standard_normal((1, n)), rng.standard_normal((1, n)) * 0.02
    table = pl.DataFrame(
        {
            "Date": [DAYS[0]] * n,
            "Code": [f"{i:04d}0" for i in range(n)],
            "pred_1d": pred[0],
            "target_1d": ret[0],
        }
    )
    ours = long_short_returns(table, "pred_1d", "target_1d", scheme="jpx", top_n=m)
    # Kaggle's calc_spread_return_per_day: Σ r·w / mean(w) per side, w = linspace(2, 1, m)
    w = np.linspace(2, 1, m)
    by_rank = ret[0][np.argsort(-pred[0])]
    kaggle = (by_rank[:m] * w).sum() / w.mean() - (by_rank[::-1][:m] * w).sum() / w.mean()
    assert ours.daily["gross"][0] * 2 * m == pytest.approx(kaggle)


def test_overlapping_sleeves_average_the_last_h_portfolios():
    target_2d = RET * 2  # any finite 2-day target: it only defines the universe here
    table = _table(pred_2d=PRED, target_2d=target_2d)
    bt = long_short_returns(
        table,
        "pred_2d",
        "target_2d",
        quantile=0.34,
        cost_bps=10.0,
        horizon=2,
        daily_target_col="target_1d",
        min_stocks=2,
    )
    q = 0.25
    w = np.array([[q, q, 0, 0, -q, -q], [q, 0, q, 0, -q, -q], [-q, -q, 0, 0, q, q]])
    book = np.array([w[0] / 2, (w[0] + w[1]) / 2, (w[1] + w[2]) / 2])
    np.testing.assert_allclose(bt.daily["gross"], (book * RET).sum(axis=1), atol=1e-12)
    turnover = np.abs(np.diff(book, axis=0, prepend=0.0)).sum(axis=1)
    np.testing.assert_allclose(bt.daily["turnover"], turnover, atol=1e-12)
    np.testing.assert_allclose(bt.daily["net"], (book * RET).sum(axis=1) - 1e-3 * turnover)
    assert bt.method == "overlapping_sleeves" and bt.periods_per_year == 252


def test_non_overlapping_rebalances_every_h_days_and_annualises_by_252_over_h():
    table = _table(pred_2d=PRED, target_2d=RET)
    bt = long_short_returns(
        table, "pred_2d", "target_2d", quantile=0.34, cost_bps=0.0, horizon=2, min_stocks=2
    )
    assert bt.daily["Date"].to_list() == [DAYS[0], DAYS[2]]
    np.testing.assert_allclose(bt.daily["gross"], [0.0175, 0.0025], atol=1e-12)
    assert bt.periods_per_year == pytest.approx(126)
    assert performance(bt)["gross"]["n_days"] == 2


def test_day_t_return_does_not_depend_on_later_predictions_or_targets():
    base = long_short_returns(_table(), "pred_1d", "target_1d", quantile=0.34, min_stocks=2)
    pred, ret = PRED.copy(), RET.copy()
    pred[2] = pred[2][::-1]
    ret[2] = 9.0
    moved = long_short_returns(
        _table(pred, ret), "pred_1d", "target_1d", quantile=0.34, min_stocks=2
    )
    assert moved.daily["net"][:2].to_list() == base.daily["net"][:2].to_list()
    assert moved.daily["net"][2] != base.daily["net"][2]


def test_days_with_too_few_stocks_hold_cash():
    bt = long_short_returns(_table(), "pred_1d", "target_1d", quantile=0.34, min_stocks=7)
    assert bt.daily["gross"].to_list() == [0.0, 0.0, 0.0]
    assert bt.daily["turnover"].to_list() == [0.0, 0.0, 0.0]


def test_return_stats_by_hand():
    r = np.array([0.01, -0.02, 0.03])
    s = return_stats(r, periods_per_year=252)
    assert s["annual_return"] == pytest.approx(r.mean() * 252)
    assert s["annual_vol"] == pytest.approx(r.std(ddof=1) * np.sqrt(252))
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert s["daily_sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))
    # wealth 1 → 1.01 → 0.9898 → 1.019494: worst fall 1 − 0.9898/1.01 = 0.02
    assert s["max_drawdown"] == pytest.approx(0.02)
    assert s["n_days"] == 3


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="scheme must be 'quantile' or 'jpx'"):
        long_short_returns(_table(), "pred_1d", "target_1d", scheme="top")
