"""RNG capture and restore: the same draws after a round trip through a weights-only checkpoint."""

from __future__ import annotations

import random

import numpy as np
import torch

from atft_kedro.training.checkpoints import load_checkpoint, save_checkpoint
from atft_kedro.training.seeding import (
    epoch_generator,
    restore_rng_state,
    rng_state,
    seed_everything,
)


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))  # noqa: NPY002


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    seed_everything(3, threads=1)
    draws()
    save_checkpoint({"rng": rng_state()}, tmp_path / "s.pt")
    expected = draws()
    draws()
    restore_rng_state(load_checkpoint(tmp_path / "s.pt")["rng"])
    assert draws() == expected


def test_same_seed_same_draws_and_epoch_generators_differ():
    seed_everything(5, threads=1)
    a = draws()
    seed_everything(5, threads=1)
    assert draws() == a
    assert epoch_generator(1, 0).random() == epoch_generator(1, 0).random()
    assert epoch_generator(1, 0).random() != epoch_generator(1, 1).random()
