"""Folds trained in spawned processes equal the folds trained one after the other."""

from __future__ import annotations

import logging

import pytest

from atft_kedro.errors import ParameterError
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fit_scalers
from atft_kedro.training.fold_training import TrainingRun, train_folds
from atft_kedro.training.fold_workers import worker_count
from tests.training.tiny_market import HORIZONS, SEQ_LEN, tiny_training_params
from tests.training.training_state import assert_same, without_timing


@pytest.mark.parametrize(
    ("requested", "threads", "folds", "device", "expected"),
    [
        (2, 2, 2, "cpu", 2),  # two cores: one thread per fold
        (2, 1, 2, "cpu", 1),  # a budget of one thread: one after the other
        (4, 8, 2, "cpu", 2),  # never more processes than folds
        (3, 4, 5, "cpu", 3),
        (1, 4, 2, "cpu", 1),
        (2, 4, 2, "cuda", 1),  # one GPU: one after the other
    ],
)
def test_worker_count(requested, threads, folds, device, expected):
    assert worker_count(requested, threads, folds, device) == expected


def test_fold_workers_below_one_is_a_parameter_error():
    with pytest.raises(ParameterError, match="fold_workers"):
        TrainingConfig.from_params({"fold_workers": 0})


def two_folds(market: dict) -> dict:
    iso = [d.isoformat() for d in market["days"]]
    second = {
        "fold": 1,
        "train": [iso[0], iso[30]],
        "val": [iso[33], iso[48]],
        "test": [iso[51], iso[55]],
    }
    return {**market["splits"], "n_splits": 2, "folds": [*market["splits"]["folds"], second]}


def train(market, splits, store, **overrides):
    params = {**tiny_training_params(), **overrides}
    job = TrainingRun.from_params(
        params, label="next_close", phase="all", seed=3, horizons=HORIZONS, seq_len=SEQ_LEN
    )
    scalers = fit_scalers(market["features"], splits, job.config, 3)
    return train_folds(market["features"], market["graph_edges"], splits, scalers, store, job)


def test_two_fold_processes_give_the_sequential_numbers(tiny_market, tmp_path, caplog):
    """Two spawned workers of one thread each (budget 2) against one process of one thread: every
    phase's validation metrics and `best` weights are the same; the workers' log lines reach the
    parent's handlers."""
    splits = two_folds(tiny_market)
    one = CheckpointStore(tmp_path / "one")
    two = CheckpointStore(tmp_path / "two")
    sequential = train(tiny_market, splits, one, threads=1, fold_workers=2)  # budget 1: in turn
    caplog.clear()  # only the parallel run's lines below
    with caplog.at_level(logging.INFO, logger="atft_kedro"):
        parallel = train(tiny_market, splits, two, threads=2, fold_workers=2)
    assert "training 2 folds in 2 processes, 1 torch thread(s) each" in caplog.text
    assert "fold 1 phase 4 epoch 1/1" in caplog.text  # logged in a worker
    assert (
        list(parallel)
        == list(sequential)
        == [f"fold{f}_phase{p}" for f in (0, 1) for p in range(5)]
    )
    for key, record in sequential.items():
        assert without_timing(parallel[key]["epochs"]) == without_timing(record["epochs"]), key
    for fold in (0, 1):
        for phase in range(5):
            a, b = (s.load(fold, phase, "best")["model_state"] for s in (one, two))
            assert_same(a, b, f"fold {fold} phase {phase} best weights")
