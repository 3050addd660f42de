"""Residual momentum and its payoff: hand-computed cases, and what the payoff measures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from atft_kedro.graph.momentum import (
    CLIP,
    MOMENTUM_COLUMNS,
    PAYOFF_LAG,
    daily_rank_correlation,
    momentum_features,
    momentum_payoff,
    scaled_residuals,
    trailing_sum,
)


def test_scaled_residuals_use_the_volatility_before_the_day_and_the_peers(rng):
    r = rng.normal(0, 0.01, (60, 4))
    peers = rng.normal(0, 0.005, (60, 4))
    peers[:, 3] = np.nan  # no peer mean: the residual alone
    z = scaled_residuals(r, peers)
    day = 40
    for i in range(4):
        move = r[:, i] - (peers[:, i] if i < 3 else 0.0)
        vol = np.std(move[day - 20 : day], ddof=1)  # days t-20 … t-1
        assert z[day, i] == pytest.approx(np.clip(move[day] / vol, -CLIP, CLIP))
    assert np.isnan(z[:10]).all(), "fewer than 10 earlier days: no volatility"
    big = r.copy()
    big[day, 0] = 1.0  # a jump is clipped, not allowed to dominate the sum
    assert scaled_residuals(big, peers)[day, 0] == CLIP


def test_residual_momentum_sums_the_last_20_days_today_included(rng):
    r = rng.normal(0, 0.01, (80, 20))  # the payoff needs 10 stocks a day
    cols = momentum_features(r, np.full(r.shape, np.nan))
    assert list(cols) == list(MOMENTUM_COLUMNS)
    z = scaled_residuals(r, np.full(r.shape, np.nan))
    day = 60
    assert cols["resid_mom_20d"][day, 1] == pytest.approx(
        z[day - 19 : day + 1, 1].sum() / np.sqrt(20)
    )
    np.testing.assert_allclose(
        cols["resid_mom_x_payoff"], cols["resid_mom_20d"] * cols["mom_payoff_5d"]
    )
    payoff = cols["mom_payoff_5d"][30:]
    assert np.isfinite(payoff).all() and (payoff == payoff[:, :1]).all(), "one value a day"


def test_trailing_sum_needs_its_minimum_count():
    x = np.array([[1.0], [np.nan], [2.0], [3.0]])
    np.testing.assert_allclose(trailing_sum(x, 2, 1)[:, 0], [1.0, 1.0, 2.0, 5.0])
    assert np.isnan(trailing_sum(x, 2, 2)[:3, 0]).all()


def test_daily_rank_correlation_is_spearman_on_the_pairs_both_have(rng):
    a, b = rng.normal(size=(3, 30)), rng.normal(size=(3, 30))
    a[1, :5] = np.nan
    b[2, :] = 1.0  # no spread
    out = daily_rank_correlation(a, b)
    assert out[0] == pytest.approx(spearmanr(a[0], b[0]).statistic)
    assert out[1] == pytest.approx(spearmanr(a[1, 5:], b[1, 5:]).statistic)
    assert np.isnan(out[2])
    assert np.isnan(daily_rank_correlation(a[:, :5], b[:, :5])).all(), "fewer than 10 pairs"


def test_the_payoff_reads_whether_momentum_pays_and_turns_with_it(rng):
    """A market where momentum pays for 150 days, then reverses: the payoff turns from positive to
    negative within a few days, and resid_mom_x_payoff ranks the next moves right in both."""
    t, n = 300, 200
    shocks = rng.normal(size=(t, n))
    sign = np.where(np.arange(t) < 150, 1.0, -1.0)
    r = shocks.copy()
    for day in range(21, t):  # today's return leans on the momentum of the 20 days before
        r[day] = shocks[day] + 0.3 * sign[day] * shocks[day - 20 : day].sum(axis=0) / np.sqrt(20)
    r *= 0.01
    cols = momentum_features(r, np.full(r.shape, np.nan))
    payoff = cols["mom_payoff_5d"][:, 0]
    assert np.nanmean(payoff[60:150]) > 0.1 and np.nanmean(payoff[170:]) < -0.05
    assert (np.sign(payoff[165:]) == -1).mean() > 0.95, "turns within 15 days"
    next_day = np.vstack([r[1:], np.full((1, n), np.nan)])
    plain = np.nanmean(daily_rank_correlation(cols["resid_mom_20d"], next_day)[170:])
    turned = np.nanmean(daily_rank_correlation(cols["resid_mom_x_payoff"], next_day)[170:])
    assert plain < 0 < turned


def test_the_payoff_at_t_uses_nothing_after_t(rng):
    r = rng.normal(0, 0.01, (120, 40))
    z = scaled_residuals(r, np.full(r.shape, np.nan))
    momentum = trailing_sum(z, 20, 10)
    base = momentum_payoff(z, momentum)
    changed = z.copy()
    changed[90:] = rng.normal(size=changed[90:].shape)
    moved = momentum_payoff(changed, trailing_sum(changed, 20, 10))
    np.testing.assert_array_equal(base[:90], moved[:90])
    assert not np.allclose(base[90:], moved[90:])
    assert PAYOFF_LAG == 2
