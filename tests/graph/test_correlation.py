import numpy as np
import pandas as pd
import pytest
import torch

from atft_kedro.graph.correlation import return_windows, rolling_correlation, window_weights


def _corr(returns, ends, **kwargs):
    corr, eligible = rolling_correlation(torch.as_tensor(returns), torch.as_tensor(ends), **kwargs)
    return corr.numpy().astype(np.float64), eligible.numpy()


def test_hand_computed_pearson_with_shrinkage():
    # three codes over a 5-day window: b = 2a (ρ = 1), c = -a + noise
    a = np.array([0.01, -0.02, 0.03, 0.00, -0.01])
    c = np.array([-0.01, 0.02, -0.02, 0.01, 0.02])
    returns = np.stack([a, 2 * a, c], axis=1)
    corr, eligible = _corr(returns, [4], lookback=5, min_obs=5, shrinkage=0.2)
    ac = np.sum((a - a.mean()) * (c - c.mean())) / np.sqrt(
        np.sum((a - a.mean()) ** 2) * np.sum((c - c.mean()) ** 2)
    )
    expected = 0.8 * np.array([[0.0, 1.0, ac], [1.0, 0.0, ac], [ac, ac, 0.0]]) + np.eye(3)
    assert eligible.tolist() == [[True, True, True]]
    np.testing.assert_allclose(corr[0], expected, atol=1e-6)


def test_pairwise_complete_matches_pandas(rng):
    returns = rng.normal(0, 0.02, (30, 8))
    returns[:, 1] += returns[:, 0]
    returns[:, 2:][rng.random((30, 6)) < 0.15] = np.nan  # codes 0, 1 complete: the fast path
    returns[:, 7] = np.nan  # never trades
    returns[-20:-2, 6] = np.nan  # 12 returns in the window: below min_obs
    ends = [24, 29]
    corr, eligible = _corr(returns, ends, lookback=20, min_obs=14)
    for b, end in enumerate(ends):
        window = pd.DataFrame(returns[end - 19 : end + 1])
        expected = np.array(window.corr(min_periods=14).fillna(0.0))
        expected[~eligible[b]] = 0.0
        expected[:, ~eligible[b]] = 0.0
        np.fill_diagonal(expected, eligible[b])
        assert eligible[b].tolist() == (window.notna().sum() >= 14).tolist()
        np.testing.assert_allclose(corr[b], expected, atol=1e-5)
    assert not eligible[:, 6:].any()


def test_ewm_matches_weighted_pearson(rng):
    returns = rng.normal(0, 0.02, (12, 4))
    returns[3, 2] = np.nan
    w = 0.5 ** (np.arange(9, -1, -1) / 3.0)
    corr, _ = _corr(returns, [11], lookback=10, min_obs=8, method="ewm", halflife=3.0)
    x = returns[2:12]
    for i in range(4):
        for j in range(4):
            both = np.isfinite(x[:, i]) & np.isfinite(x[:, j])
            cov = np.cov(x[both, i], x[both, j], aweights=w[both])
            expected = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
            assert corr[0, i, j] == pytest.approx(expected, abs=1e-5)


def test_constant_and_short_series_are_ineligible():
    returns = np.random.default_rng(1).normal(0, 0.01, (20, 3))
    returns[:, 1] = 0.0  # no price change: zero variance
    returns[:15, 2] = np.nan  # 5 returns < min_obs
    corr, eligible = _corr(returns, [19], lookback=10, min_obs=6)
    assert eligible[0].tolist() == [True, False, False]
    assert np.all(corr[0, 1:] == 0) and np.all(corr[0, :, 1:] == 0)


def test_windows_use_no_later_rows(rng):
    returns = rng.normal(0, 0.02, (40, 5))
    later = returns.copy()
    later[21:] = rng.normal(0, 0.05, (19, 5))
    for r in (returns, later):
        windows = return_windows(torch.as_tensor(r), torch.tensor([3, 20]), 10)
        assert torch.isnan(windows[0, :6]).all()  # before the first row: missing, not wrapped
    before, _ = _corr(returns, [10, 20], lookback=10, min_obs=5)
    after, _ = _corr(later, [10, 20], lookback=10, min_obs=5)
    np.testing.assert_array_equal(before, after)


def test_window_weights():
    w = window_weights(5, "ewm", 2.0)
    assert w[-1] == 1.0 and w[-3] == pytest.approx(0.5)
    assert torch.equal(window_weights(5, "pearson", 2.0), torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="method"):
        window_weights(5, "cosine", 2.0)
