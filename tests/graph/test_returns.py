import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.graph.returns import (
    MIN_GROUP_CODES,
    ReturnPanel,
    daily_log_returns,
    market_betas,
    residual_returns,
    winsorize_returns,
)


def _panel(rows):
    return pl.DataFrame(
        rows,
        schema=["Date", "Code", "close", "market", "sector33"],
        orient="row",
        schema_overrides={"Date": pl.Date},
    )


def test_returns_are_over_consecutive_trading_days():
    d = [dt.date(2024, 1, i) for i in (4, 5, 8, 9)]
    panel = _panel(
        [
            (d[0], "10000", 100.0, "0111", "0050"),
            (d[1], "10000", 110.0, "0111", "0050"),
            (d[2], "10000", None, "0111", "0050"),  # no trade
            (d[3], "10000", 121.0, "0111", "0050"),
            (d[0], "20000", 50.0, "0112", None),
            (d[3], "20000", 55.0, "0112", None),  # no row on d[1], d[2]
            (d[1], "30000", 10.0, None, "0050"),
            (d[2], "30000", 20.0, None, "0050"),
        ]
    )
    returns = daily_log_returns(panel)
    assert returns.dates == d and returns.codes == ["10000", "20000", "30000"]
    expected = np.full((4, 3), np.nan)
    expected[1, 0] = np.log(1.1)
    expected[2, 2] = np.log(2.0)
    np.testing.assert_allclose(returns.log_returns, expected)  # gaps never span two days
    assert returns.present[:, 1].tolist() == [True, False, False, True]
    assert returns.categories["sector33"][3].tolist() == [0, -1, -1]
    assert returns.categories["market"][1].tolist() == [0, -1, -1]


def test_bad_panels_are_rejected_with_the_offending_row():
    d = dt.date(2024, 1, 4)
    with pytest.raises(ValueError, match=r"'close' has 1 non-positive .*20000 on 2024-01-04"):
        daily_log_returns(
            _panel([(d, "10000", 1.0, "0111", "0050"), (d, "20000", 0.0, "0111", "0050")])
        )
    with pytest.raises(ValueError, match="duplicated"):
        daily_log_returns(
            _panel([(d, "10000", 1.0, "0111", "0050"), (d, "10000", 2.0, "0111", "0050")])
        )
    with pytest.raises(ValueError, match="missing column"):
        daily_log_returns(pl.DataFrame({"Date": [d], "Code": ["10000"]}))


def _grid(returns: np.ndarray, sectors: list[int]) -> ReturnPanel:
    t, n = returns.shape
    present = np.isfinite(returns)
    sector = np.broadcast_to(np.array(sectors, dtype=np.int32), (t, n)).copy()
    market = np.zeros((t, n), dtype=np.int32)
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(t)]
    codes = [f"{1000 + j}0" for j in range(n)]
    return ReturnPanel(dates, codes, returns, present, {"market": market, "sector33": sector})


def test_residual_returns_match_hand_computation(rng):
    # sector 0: six codes (demeaned within it); sector 1: two codes (too few: market mean);
    # the last code has no sector (market mean)
    sectors = [0] * 6 + [1, 1, -1]
    returns = rng.normal(0, 0.02, (4, 9))
    returns[2, 3] = np.nan  # no return: excluded from the means, stays NaN
    panel = _grid(returns, sectors)

    market = residual_returns(panel, "market").log_returns
    expected = returns - np.nanmean(returns, axis=1, keepdims=True)
    np.testing.assert_allclose(market, expected, atol=1e-12)

    sector = residual_returns(panel, "sector33").log_returns
    assert MIN_GROUP_CODES == 5
    own = np.nanmean(returns[:, :6], axis=1, keepdims=True)
    np.testing.assert_allclose(sector[:, :6], returns[:, :6] - own, atol=1e-12)
    np.testing.assert_allclose(sector[:, 6:], expected[:, 6:], atol=1e-12)
    assert np.isnan(sector[2, 3]) and np.isnan(market[2, 3])
    # day 2 has only five sector-0 returns: still enough; the sector mean skips the NaN
    assert sector[2, 0] == pytest.approx(returns[2, 0] - np.nanmean(returns[2, :6]))
    assert residual_returns(panel, "none") is panel


def test_residual_returns_are_point_in_time(rng):
    returns = rng.normal(0, 0.02, (30, 12))
    panel = _grid(returns, [0] * 6 + [1] * 6)
    changed = returns.copy()
    changed[20:] = rng.normal(0, 0.5, (10, 12))  # a different future
    for by in ("market", "sector33"):
        before = residual_returns(panel, by).log_returns[:20]
        after = residual_returns(_grid(changed, [0] * 6 + [1] * 6), by).log_returns[:20]
        np.testing.assert_array_equal(before, after)


def test_unknown_residualize_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="graph.residualize.*sector33.*'industry'"):
        residual_returns(_grid(rng.normal(0, 0.02, (3, 3)), [0, 0, 0]), "industry")


def test_market_betas_use_only_earlier_days(rng):
    x = rng.normal(0, 0.01, (120, 6))
    x[:, 0] = 1.7 * x[:, 1:].mean(axis=1) + rng.normal(0, 0.001, 120)
    beta, market = market_betas(x, 60)
    assert market.shape == (120, 1)
    # by hand: OLS slope of code 0 on the market over days 40 … 99 (the 60 days before day 100)
    m, r = market[40:100, 0], x[40:100, 0]
    expected = np.cov(m, r)[0, 1] / np.var(m, ddof=1)
    assert beta[100, 0] == pytest.approx(expected, rel=1e-9)
    assert (beta[:20] == 1.0).all(), "too few days: beta 1"
    moved = x.copy()
    moved[100:] *= -3
    np.testing.assert_array_equal(market_betas(moved, 60)[0][:101], beta[:101])


def test_beta_residuals_remove_a_market_exposure_the_sector_mean_leaves(rng, make_panel):
    days = 300
    market = rng.normal(0, 0.015, (days, 1))
    betas = np.array([0.4, 0.4, 0.4, 1.6, 1.6, 1.6])
    panel = make_panel(betas * market + rng.normal(0, 0.01, (days, 6)), ["0050"] * 6)
    returns = daily_log_returns(panel)
    plain = residual_returns(returns, "sector33").log_returns[260:]
    adjusted = residual_returns(returns, "sector33", beta_window=250).log_returns[260:]
    # the high-beta codes co-move after sector demeaning, much less once β × market is removed
    assert np.corrcoef(plain[:, 3], plain[:, 4])[0, 1] > 0.4
    assert abs(np.corrcoef(adjusted[:, 3], adjusted[:, 4])[0, 1]) < 0.2


def test_winsorize_clips_by_the_earlier_days_std(rng):
    x = rng.normal(0, 0.01, (100, 3))
    x[80, 1] = 0.2  # a jump of 20 standard deviations
    panel = ReturnPanel([], [], x, np.isfinite(x), {})
    out = winsorize_returns(panel, 3.0, 50).log_returns
    bound = 3.0 * np.std(x[30:80, 1], ddof=1)
    assert out[80, 1] == pytest.approx(bound)
    np.testing.assert_array_equal(out[:20], x[:20])  # fewer than 20 earlier returns: unclipped
    assert np.mean(out == x) > 0.98  # a normal day is rarely beyond 3 standard deviations
    assert winsorize_returns(panel, None, 50) is panel
    with pytest.raises(ValueError, match="winsorize"):
        winsorize_returns(panel, 0.0, 50)
