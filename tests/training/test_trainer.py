"""The per-epoch subset of training days: a function of (seed, epoch), the same for both loaders;
the debiased EMA of the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.distributed import epoch_day_subset
from atft_kedro.training.optimisation import weight_average
from atft_kedro.training.phases import PhaseConfig
from atft_kedro.training.steps import epoch_loader
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
        TrainingConfig.from_params({"max_train_days_per_epoch": 0})


def test_streaming_and_in_memory_train_on_the_same_subset(tiny_market):
    dates = {}
    for implementation in ("in_memory", "streaming"):
        params = tiny_training_params() | {"max_train_days_per_epoch": 9}
        params["loader"] = {"implementation": implementation, "num_workers": 0, "block_days": 4}
        train = make_data(tiny_market, params).train
        per_epoch = []
        for epoch in (0, 1):
            train.set_epoch(epoch)
            batches, n = epoch_loader(train, params["max_train_days_per_epoch"], epoch)
            seen = [b["date"] for b in batches]
            assert len(seen) == n == 9 and len(set(seen)) == 9
            per_epoch.append(set(seen))
        assert per_epoch[0] != per_epoch[1]
        dates[implementation] = per_epoch
    assert dates["in_memory"] == dates["streaming"]


def test_ema_is_the_bias_corrected_exponential_average_of_the_steps():
    """After t steps the EMA is Σ (1−β) β^(t−s) θ_s / (1−β^t): the first step's weights fade."""
    phase = PhaseConfig.from_dict(0, {"averaging": {"kind": "ema", "ema_decay": 0.9}})
    model = torch.nn.Linear(2, 1, bias=False)
    average = weight_average(model, phase.averaging)
    assert isinstance(average, AveragedModel)
    steps = np.array([5.0, 1.0, 2.0, 3.0, 4.0])
    for value in steps:
        model.weight.data.fill_(value)
        average.update_parameters(model)
    w = 0.9 ** np.arange(len(steps) - 1, -1, -1)
    expected = (w * steps).sum() / w.sum()
    got = average.module.weight.detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # a plain EMA started at the first step would hold 0.9^4 = 66% of it
    plain = 0.9**4 * 5.0 + sum(0.1 * 0.9 ** (3 - i) * v for i, v in enumerate(steps[1:]))
    assert abs(got[0, 0] - plain) > 0.3
