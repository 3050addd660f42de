"""A D-day batch (``collate_days``) is D one-day batches: same predictions, and each loss term
is the mean of the D one-day terms, Sharpe EMA included."""

import copy

import pytest
import torch

from atft_kedro.loader.day_batch import collate_days
from atft_kedro.model import ATFTLoss, LossConfig
from tests.model.day_batches import HORIZONS, day_batch
from tests.model.test_atft_gat_fan import make_model

SIZES = [7, 3, 12, 9]

LOSSES = {
    "all_terms_rank_gauss": LossConfig(
        pinball_weight=1.0,
        rank_weight=0.5,
        mse_weight=0.3,
        sharpe_weight=0.2,
        aux_weight=0.1,
        target="rank_gauss",
    ),
    "zscore_target": LossConfig(rank_weight=1.0, sharpe_weight=0.1, target="zscore"),
}


def days_with_missing_targets() -> list[dict]:
    batches = [day_batch(n=n, per_node=2, seed=s) for s, n in enumerate(SIZES)]
    for b in batches:
        for h in HORIZONS:
            b["y"][h][::4] = float("nan")  # masked targets, as on real days
            b["y_mask"][h] = torch.isfinite(b["y"][h])
    return batches


def test_collated_graph_is_block_diagonal_and_keeps_each_day():
    batches = days_with_missing_targets()
    batch = collate_days(batches)
    assert batch["n_days"] == 4 and batch["x"].shape[0] == sum(SIZES)
    assert batch["days"].tolist() == sum(([d] * n for d, n in enumerate(SIZES)), [])
    src_day, dst_day = batch["days"][batch["edge_index"]]
    assert torch.equal(src_day, dst_day)  # no edge crosses days
    assert collate_days(batches[:1]) is batches[0]  # one day: the one-day batch itself


@pytest.mark.parametrize("use_gat", [False, True])
def test_predictions_of_a_d_day_batch_are_the_one_day_predictions(use_gat):
    model = make_model(use_fan=True, use_san=True, use_gat=use_gat).eval()
    batches = days_with_missing_targets()
    together = model(collate_days(batches))
    for h in HORIZONS:
        alone = torch.cat([model(b)["point"][h] for b in batches])
        torch.testing.assert_close(together["point"][h], alone, atol=1e-6, rtol=1e-5)
    aux_alone = torch.stack([model(b)["aux_loss"] for b in batches]).mean()
    torch.testing.assert_close(together["aux_loss"], aux_alone)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_d_day_loss_is_the_mean_of_one_day_losses_and_moves_the_ema_alike(name):
    model = make_model(use_fan=True, use_san=True, use_gat=True).eval()
    batches = days_with_missing_targets()
    sequential = ATFTLoss(LOSSES[name]).train()
    batched = copy.deepcopy(sequential)

    parts_alone, grads_alone = [], []
    for b in batches:  # D one-day steps at the same weights, in order
        model.zero_grad()
        loss, parts = sequential(model(b), b)
        loss.backward()
        parts_alone.append(parts)
        grads_alone.append([p.grad.clone() for p in model.parameters() if p.grad is not None])

    model.zero_grad()
    loss, parts = batched(model(collate_days(batches)), collate_days(batches))
    loss.backward()
    for term, value in parts.items():
        expected = sum(float(p[term]) for p in parts_alone) / len(batches)
        assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-7), term
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    for got, *alone in zip(grads, *grads_alone, strict=True):
        torch.testing.assert_close(got, torch.stack(alone).mean(0), atol=1e-6, rtol=1e-4)
    for buffer in ("sharpe_mean", "sharpe_second", "sharpe_days"):
        torch.testing.assert_close(getattr(batched, buffer), getattr(sequential, buffer))
