"""Per-day reductions of a multi-day batch equal the same reduction run on each day alone."""

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from atft_kedro.model.losses import _zscore
from atft_kedro.model.segments import Segments

SIZES = [5, 1, 8, 3]


def stacked(seed: int = 0, ties: bool = False):
    g = torch.Generator().manual_seed(seed)
    n = sum(SIZES)
    values = torch.randn(n, generator=g, dtype=torch.float64)
    if ties:
        values = values.round()  # many ties within and across days
    valid = torch.rand(n, generator=g) > 0.25
    seg = Segments(torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES)), 4)
    return values, valid, seg


def per_day(x: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.split(x, SIZES))


def test_sum_and_mean_stay_within_their_day():
    values, valid, seg = stacked()
    sums = seg.sum(values)
    means = seg.mean(values, valid)
    for d, (v, m) in enumerate(zip(per_day(values), per_day(valid), strict=True)):
        torch.testing.assert_close(sums[d], v.sum())
        expected = v[m].mean() if m.any() else torch.tensor(0.0, dtype=v.dtype)
        torch.testing.assert_close(means[d], expected)


def test_zscore_and_log_softmax_match_one_day_versions():
    values, valid, seg = stacked(1)
    z = seg.zscore(values, valid, 1e-8)
    log_p = seg.log_softmax(values, valid)
    for zd, lpd, v, m in zip(
        per_day(z), per_day(log_p), per_day(values), per_day(valid), strict=True
    ):
        torch.testing.assert_close(zd, _zscore(v, m, 1e-8))
        if m.any():
            torch.testing.assert_close(lpd[m], v[m].log_softmax(0))
        assert torch.all(lpd[~m] == 0)


@pytest.mark.parametrize("ties", [False, True])
def test_average_rank_is_scipy_rankdata_per_day(ties):
    values, _, seg = stacked(2, ties)
    ranks = seg.average_rank(values)
    for r, v in zip(per_day(ranks), per_day(values), strict=True):
        np.testing.assert_allclose(r.numpy(), rankdata(v.numpy(), method="average"))
