import numpy as np
import pytest
from scipy.signal import lfilter

from atft_kedro.evaluation.bootstrap import (
    mean_ci,
    mean_of_means_ci,
    sharpe_ci,
    stationary_bootstrap_indices,
)


def _ar1(rng: np.random.Generator, reps: int, n: int, phi: float, mean: float) -> np.ndarray:
    """[reps, n] stationary AR(1) series (burn-in discarded) with the given mean."""
    shocks = rng.standard_normal((reps, n + 100))
    return mean + lfilter([1.0], [1.0, -phi], shocks, axis=1)[:, 100:]


def _coverage(series: np.ndarray, mean: float, mean_block: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = [lo <= mean <= hi for lo, hi in (mean_ci(x, mean_block, 400, rng=rng) for x in series)]
    return float(np.mean(hits))


def test_indices_are_wrapped_runs_with_geometric_block_lengths():
    idx = stationary_bootstrap_indices(50, 400, mean_block=5.0, rng=np.random.default_rng(0))
    assert idx.shape == (400, 50) and idx.min() >= 0 and idx.max() < 50
    continues = np.diff(idx, axis=1) % 50 == 1
    # a block continues with probability 1 − 1/mean_block (plus rare chance restarts)
    assert continues.mean() == pytest.approx(1 - 1 / 5 + 1 / 5 / 50, abs=0.01)
    again = stationary_bootstrap_indices(50, 400, mean_block=5.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx, again)


def test_mean_ci95_covers_the_true_mean_of_ar1_series_about_95_percent():
    series = _ar1(np.random.default_rng(42), reps=200, n=400, phi=0.3, mean=0.05)
    coverage = _coverage(series, 0.05, mean_block=10.0, seed=1)
    # percentile stationary bootstrap slightly under-covers in finite samples
    assert 0.87 <= coverage <= 0.99


def test_blocks_matter_an_iid_bootstrap_under_covers_dependent_series():
    series = _ar1(np.random.default_rng(7), reps=200, n=400, phi=0.6, mean=0.0)
    assert _coverage(series, 0.0, mean_block=1.0, seed=2) < 0.8
    assert _coverage(series, 0.0, mean_block=15.0, seed=2) > 0.85


def test_sharpe_ci_brackets_the_sample_sharpe_and_is_seeded():
    r = np.random.default_rng(3).normal(0.001, 0.01, 500)
    sample = r.mean() / r.std(ddof=1) * np.sqrt(252)
    lo, hi = sharpe_ci(r, 252, mean_block=5, n_boot=1000, rng=np.random.default_rng(4))
    assert lo < sample < hi and hi - lo > 0.5
    assert (lo, hi) == sharpe_ci(r, 252, mean_block=5, n_boot=1000, rng=np.random.default_rng(4))


def test_too_short_series_gives_an_undefined_interval():
    lo, hi = mean_ci(np.array([0.1, np.nan]))
    assert np.isnan(lo) and np.isnan(hi)


def test_mean_of_means_ci_covers_the_average_and_narrows_with_more_series():
    rng = np.random.default_rng(5)
    one = [rng.normal(0.02, 0.1, 250)]
    four = one + [rng.normal(0.02, 0.1, 250) for _ in range(3)]
    lo1, hi1 = mean_of_means_ci(one, rng=np.random.default_rng(0))
    lo4, hi4 = mean_of_means_ci(four, rng=np.random.default_rng(0))
    average = np.mean([x.mean() for x in four])
    assert lo4 < average < hi4
    assert (hi4 - lo4) < 0.7 * (hi1 - lo1)  # ~1/2 in theory
    assert mean_of_means_ci(one, rng=np.random.default_rng(0)) == mean_ci(one[0])
    assert np.isnan(mean_of_means_ci([np.array([1.0])])[0])
