"""The per-epoch subset of training days: a function of (seed, epoch), the same for both loaders."""

from __future__ import annotations

import numpy as np
import pytest

from atft_kedro.training.trainer import LoopConfig, epoch_day_subset, epoch_loader
from tests.training.test_fold_training import make_data
from tests.training.tiny_market import tiny_training_params


def test_epoch_subset_depends_on_seed_and_epoch_only():
    a = epoch_day_subset(100, 30, seed=3, epoch=2)
    assert a.size == 30 and np.unique(a).size == 30 and a.min() >= 0 and a.max() < 100
    np.testing.assert_array_equal(a, epoch_day_subset(100, 30, seed=3, epoch=2))
    assert not np.array_equal(a, epoch_day_subset(100, 30, seed=3, epoch=3))
    assert not np.array_equal(a, epoch_day_subset(100, 30, seed=4, epoch=2))
    np.testing.assert_array_equal(epoch_day_subset(10, None, seed=0, epoch=0), np.arange(10))
    np.testing.assert_array_equal(epoch_day_subset(10, 50, seed=0, epoch=0), np.arange(10))


def test_max_days_must_be_positive():
    with pytest.raises(ValueError, match="max_train_days_per_epoch"):
        LoopConfig.from_params({"max_train_days_per_epoch": 0})


def test_streaming_and_in_memory_train_on_the_same_subset(tiny_market):
    dates = {}
    for implementation in ("in_memory", "streaming"):
        params = tiny_training_params() | {"max_train_days_per_epoch": 9}
        params["loader"] = {"implementation": implementation, "num_workers": 0, "block_days": 4}
        train = make_data(tiny_market, params).train
        loop = LoopConfig.from_params(params)
        per_epoch = []
        for epoch in (0, 1):
            train.set_epoch(epoch)
            batches, n = epoch_loader(train, loop, epoch)
            seen = [b["date"] for b in batches]
            assert len(seen) == n == 9 and len(set(seen)) == 9
            per_epoch.append(set(seen))
        assert per_epoch[0] != per_epoch[1]
        dates[implementation] = per_epoch
    assert dates["in_memory"] == dates["streaming"]
