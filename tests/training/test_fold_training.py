"""Phase chaining, resume equivalence, determinism and the non-finite guard on the tiny market."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from atft_kedro.errors import ParameterError
from atft_kedro.inference.predict import Fitted, fitted
from atft_kedro.model import ATFTLoss
from atft_kedro.training import fold_training
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import (
    fit_fold_scaler,
    fit_scalers,
    fold_data,
    input_columns,
    trading_calendar,
)
from atft_kedro.training.fold_training import (
    MissingCheckpointError,
    TrainingRun,
    train_fold,
    train_folds,
)
from atft_kedro.training.phases import parse_phase
from atft_kedro.training.trainer import NonFiniteLossError
from tests.training.tiny_market import HORIZONS, SEQ_LEN, tiny_config, tiny_training_params
from tests.training.training_state import TIMING, assert_same, assert_same_training_state


def make_data(market, params, seed=0, label="next_close"):
    cfg = tiny_config(params, label)
    fold = market["splits"]["folds"][0]
    calendar = trading_calendar(market["features"])
    scaler = fit_fold_scaler(market["features"], fold, calendar, cfg.scaler, seed)
    return fold_data(
        market["features"],
        market["graph_edges"],
        fold,
        calendar,
        scaler,
        cfg,
        seq_len=SEQ_LEN,
        seed=seed,
    )


def run(market, params, store, phase, seed=0, resume_checkpoint=None, **kwargs):
    job = TrainingRun(
        tiny_config(params), tuple(parse_phase(phase)), seed, SEQ_LEN, resume_checkpoint
    )
    return train_fold(make_data(market, params, seed), job, store, **kwargs)


def model_metrics(record):
    return [{k: v for k, v in epoch.items() if k not in TIMING} for epoch in record["epochs"]]


def test_phase_n_starts_from_phase_n_minus_1_best(tiny_market, tmp_path, monkeypatch):
    params = tiny_training_params()
    store = CheckpointStore(tmp_path / "ckpt")
    run(tiny_market, params, store, 0)
    seen = {}
    real = fold_training.train_phase

    def spy(model, *args, **kwargs):
        seen["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        return real(model, *args, **kwargs)

    monkeypatch.setattr(fold_training, "train_phase", spy)
    records = run(tiny_market, params, store, 1)
    best0 = store.load(0, 0, "best")["model_state"]
    assert seen["state"].keys() == best0.keys()
    assert all(torch.equal(seen["state"][k], best0[k]) for k in best0)
    assert records["fold0_phase1"]["started_from"] == str(store.path_for(0, 0, "best"))
    after = store.load(0, 1, "last")["model_state"]
    assert any(not torch.equal(after[k], best0[k]) for k in best0 if k.startswith("heads."))


def test_missing_previous_checkpoint_is_a_one_line_error(tiny_market, tmp_path):
    store = CheckpointStore(tmp_path / "ckpt")
    with pytest.raises(MissingCheckpointError) as info:
        run(tiny_market, tiny_training_params(), store, 3)
    message = str(info.value)
    assert "\n" not in message
    assert str(store.path_for(0, 2, "best")) in message
    assert "run `kedro run --pipeline training --params phase=2` first" in message


def resume_params(averaging: str = "ema"):
    """Phase 0 with everything that carries state: dropout, augmentation, weight averaging, the
    Sharpe EMA, early stopping. min_delta = 1 (more than a RankIC can gain) makes only epoch 1
    count as an improvement, so a run of patience 2 stops after epoch 3 — if, after a resume, the
    early stopping remembers epochs 1 and 2."""
    params = tiny_training_params(epochs=4)
    params["max_train_days_per_epoch"] = 12  # a different day subset every epoch
    params["min_delta"] = 1.0
    params["phases"]["0"] |= {
        "patience": 2,
        "loss": {"rank_weight": 0.3, "sharpe_weight": 0.1},
        "augmentation": {
            "feature_noise_std": 0.1,
            "frequency_dropout_prob": 0.2,
            "frequency_dropout_batch_prob": 0.5,
        },
        "averaging": {"kind": averaging, "ema_decay": 0.9},
    }
    assert params["model"]["dropout"] > 0
    return params


@pytest.mark.parametrize("averaging", ["ema", "swa"])
def test_resume_from_last_equals_an_uninterrupted_run(tiny_market, tmp_path, averaging):
    params = resume_params(averaging)
    full_store = CheckpointStore(tmp_path / "full")
    full = run(tiny_market, params, full_store, 0)["fold0_phase0"]
    assert len(full["epochs"]) == 3 and full["stopped_early"]  # early stopping ended the run

    def interrupt(metrics):
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt

    cut_store = CheckpointStore(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        run(tiny_market, params, cut_store, 0, on_epoch_end=interrupt)
    assert cut_store.load(0, 0, "last")["epoch"] == 2
    resumed = run(
        tiny_market, params, cut_store, 0, resume_checkpoint=cut_store.path_for(0, 0, "last")
    )["fold0_phase0"]
    # everything the resumed run carries on with: averaged weights, Sharpe moments, early
    # stopping, optimiser, RNG, history (a lost one changes these, or the weights after it)
    a, b = full_store.load(0, 0, "last"), cut_store.load(0, 0, "last")
    assert a["epoch"] == 3
    assert_same_training_state(a, b)
    assert a["averaged_state"] is not None and int(a["loss_state"]["sharpe_days"]) > 0
    assert model_metrics(resumed) == model_metrics(full)
    for key in ("best_epoch", "best_val_rank_ic", "stopped_early"):
        assert resumed[key] == full[key], key
    a, b = full_store.load(0, 0, "best"), cut_store.load(0, 0, "best")
    assert_same(a["model_state"], b["model_state"], "best model_state")


def test_two_runs_with_the_same_seed_give_identical_metrics(tiny_market, tmp_path):
    params = tiny_training_params(epochs=1)
    one = run(tiny_market, params, CheckpointStore(tmp_path / "a"), "all")
    two = run(tiny_market, params, CheckpointStore(tmp_path / "b"), "all")
    assert one.keys() == two.keys() == {f"fold0_phase{p}" for p in range(5)}
    for key in one:
        assert model_metrics(one[key]) == model_metrics(two[key])
    other = run(tiny_market, params, CheckpointStore(tmp_path / "c"), 0, seed=1)
    assert model_metrics(other["fold0_phase0"]) != model_metrics(one["fold0_phase0"])


class PoisonedLoss(ATFTLoss):
    """Returns NaN on the listed calls (1-based), the real loss otherwise."""

    poisoned: tuple[int, ...] = (3,)

    def forward(self, output, batch, update_state=None):
        self.calls = getattr(self, "calls", 0) + 1
        total, parts = super().forward(output, batch, update_state)
        if self.training and self.calls in self.poisoned:
            total = total * float("nan")
        return total, parts


def test_non_finite_loss_is_skipped_and_counted(tiny_market, tmp_path, monkeypatch):
    monkeypatch.setattr(fold_training, "ATFTLoss", PoisonedLoss)
    params = tiny_training_params()
    record = run(tiny_market, params, CheckpointStore(tmp_path / "a"), 0)["fold0_phase0"]
    epoch = record["epochs"][0]
    assert epoch["nonfinite_skips"] == 1
    assert epoch["train_days"] == make_data(tiny_market, params).train.__len__() - 1
    params["max_nonfinite_share"] = 0.0
    with pytest.raises(NonFiniteLossError, match="1 of .* steps had a non-finite loss"):
        run(tiny_market, params, CheckpointStore(tmp_path / "b"), 0)


def test_a_checkpoint_from_another_model_version_is_a_one_line_error():
    import dataclasses

    from atft_kedro.model import ATFTGATFAN, ModelConfig

    model = ATFTGATFAN(ModelConfig(n_features=6, hidden=8, attn_heads=2))
    state = {
        "model_config": dataclasses.asdict(model.cfg),
        "model_state": {
            k: v for k, v in model.state_dict().items() if not k.startswith("gat.peer")
        },
    }
    with pytest.raises(ValueError, match=r"old\.pt does not fit this model \(2 missing.*gat\.peer"):
        fold_training.load_weights(model, state, "old.pt")
    fold_training.load_weights(model, {**state, "model_state": model.state_dict()}, "ok.pt")


RECORD_KEYS = {
    "fold",
    "phase",
    "name",
    "started_from",
    "modules",
    "trainable",
    "trainable_parameters",
    "early_stop_horizon",
    "best_epoch",
    "best_val_rank_ic",
    "stopped_early",
    "checkpoint",
    "phase_config",
    "epochs",
}
EPOCH_KEYS = {
    "epoch",
    "global_step",
    "lr",
    "train_total",
    "train_seconds",
    "samples_per_s",
    "train_days",
    "train_samples",
    "nonfinite_skips",
    "nonfinite_repairs",
    "val_loss",
    "val_days",
    "val_mean_rank_ic",
    "best_epoch",
    "improved",
    "averaged_weights",
    "seconds",
    "peak_rss_mib",
}
LOSS_PARTS = {"pinball", "rank", "sharpe", "mse", "aux"}


def test_training_metrics_record_keys_are_the_contract(tiny_market, tmp_path):
    """docs/contracts.md, "training_metrics": the keys the report and users read."""
    record = run(tiny_market, tiny_training_params(), CheckpointStore(tmp_path), 0)["fold0_phase0"]
    assert set(record) == RECORD_KEYS
    per_horizon = {f"val_{m}_{h}d" for m in ("ic", "rank_ic") for h in HORIZONS}
    for epoch in record["epochs"]:
        train_parts = {k for k in epoch if k.startswith("train_")} - EPOCH_KEYS
        assert set(epoch) == EPOCH_KEYS | per_horizon | train_parts
        assert {k.removeprefix("train_") for k in train_parts} <= LOSS_PARTS


@pytest.mark.parametrize("label", ["next_close", "close"])
def test_a_checkpoint_knows_the_label_it_was_fitted_to(tiny_market, tmp_path, label):
    """The label reaches the loader (the model fits that view's targets) and the checkpoint, from
    which predictions and signals say what they were fitted to."""
    job = TrainingRun.from_params(
        tiny_training_params(), label=label, phase=0, seed=0, horizons=HORIZONS, seq_len=SEQ_LEN
    )
    splits = {"folds": tiny_market["splits"]["folds"][:1]}
    scalers = fit_scalers(tiny_market["features"], splits, job.config, 0)
    store = CheckpointStore(tmp_path / "ckpt")
    records = train_folds(
        tiny_market["features"], tiny_market["graph_edges"], splits, scalers, store, job
    )
    assert fitted(store, 0, 0) == Fitted(label=label, inputs=None)
    batch = make_data(tiny_market, tiny_training_params(), label=label).val[0]
    rows = pl.read_parquet(tiny_market["features"]).filter(pl.col("Date") == batch["date"])
    rows = rows.sort("Code").filter(pl.col("Code").is_in(list(batch["codes"])))
    prefix = "target_next" if label == "next_close" else "target"
    np.testing.assert_allclose(batch["y"][1].numpy(), rows[f"{prefix}_1d"].to_numpy(), rtol=1e-6)
    assert records["fold0_phase0"]["best_val_rank_ic"] is not None
    with pytest.raises(ParameterError, match="global `label`"):
        TrainingConfig.from_params({"loader": {"target": "close"}}, label="next_close")


def test_training_inputs_select_registry_families_and_their_masks():
    columns = [
        "Date",
        "Code",
        "market",
        "ret_1d",
        "mkt_ret_1d",
        "resid_mom_20d",
        "earnings_surprise",
        "is_returns_valid",
        "is_market_valid",
        "is_momentum_valid",
        "is_earnings_valid",
        "is_topix_valid",
        "universe",
        "target_next_1d",
    ]
    assert input_columns(columns, ["momentum", "market"]) == (
        ["mkt_ret_1d", "resid_mom_20d"],
        ["is_market_valid", "is_momentum_valid", "is_topix_valid"],
    )
    assert input_columns(columns)[0] == [
        "ret_1d",
        "mkt_ret_1d",
        "resid_mom_20d",
        "earnings_surprise",
    ]
    assert Fitted(inputs=("earnings",)).columns(columns) == [
        "earnings_surprise",
        "is_earnings_valid",
    ]
    with pytest.raises(ParameterError, match="training.inputs: unknown"):
        input_columns(columns, ["momentum", "alpha"])
