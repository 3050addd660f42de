"""Checkpoints: atomic writes, `weights_only=True` loading of a real training state."""

from __future__ import annotations

import pytest
import torch

from atft_kedro.datasets.checkpoint import CheckpointDirectoryDataset
from atft_kedro.training.checkpoints import CheckpointStore, load_checkpoint, save_checkpoint
from atft_kedro.training.fold_data import fit_fold_scaler, fold_data, trading_calendar
from atft_kedro.training.fold_training import TrainingRun, train_fold
from tests.training.tiny_market import SEQ_LEN, tiny_config, tiny_training_params

REQUIRED = {
    "model_state",
    "model_config",
    "optimizer_state",
    "scheduler_state",
    "epoch",
    "global_step",
    "rng_state",
    "early_stopping",
    "history",
    "params",
    "fold",
    "phase",
}


def test_a_trained_checkpoint_loads_with_weights_only(tiny_market, tmp_path):
    params = tiny_training_params()
    cfg = tiny_config(params)
    fold = tiny_market["splits"]["folds"][0]
    calendar = trading_calendar(tiny_market["features"])
    scaler = fit_fold_scaler(tiny_market["features"], fold, calendar, cfg.scaler, 0)
    data = fold_data(
        tiny_market["features"],
        tiny_market["graph_edges"],
        fold,
        calendar,
        scaler,
        cfg,
        seq_len=SEQ_LEN,
        seed=0,
    )
    store = CheckpointDirectoryDataset(path=str(tmp_path / "ckpt")).load()
    train_fold(data, TrainingRun(cfg, (0,), seed=0, seq_len=SEQ_LEN), store)
    assert store.available() == [(0, 0, "best"), (0, 0, "last")]
    last = torch.load(store.path_for(0, 0, "last"), weights_only=True)
    assert REQUIRED <= set(last)
    assert set(last["rng_state"]) >= {"python", "numpy", "torch"}
    assert last["params"]["phase"]["lr"] == params["phases"]["0"]["lr"]
    assert last["params"]["run"]["training"]["loader"]["target"] == "next_close"  # the label
    best = torch.load(store.path_for(0, 0, "best"), weights_only=True)
    assert best["model_config"]["hidden"] == params["model"]["hidden"]
    assert not list((tmp_path / "ckpt").rglob("*.tmp"))


def test_atomic_save_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "fold0" / "phase0" / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(2)}, path)

    def crash(state, file):
        open(file, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(2)}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": object()}, path)
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(path)


def test_store_paths_and_kinds(tmp_path):
    store = CheckpointStore(tmp_path)
    assert store.path_for(1, 3, "best") == tmp_path / "fold1" / "phase3" / "best.pt"
    with pytest.raises(ValueError, match="kind"):
        store.path_for(0, 0, "final")
    assert not store.exists(0, 0, "last")
