"""Phase-4 augmentation: padded days stay zero, the window mean survives frequency dropout."""

from __future__ import annotations

import torch

from atft_kedro.training.augmentation import augment_batch, feature_noise, frequency_dropout
from atft_kedro.training.phases import AugmentationConfig


def window():
    torch.manual_seed(0)
    x = torch.randn(6, 10, 3)
    mask = torch.ones(6, 10, dtype=torch.bool)
    mask[0, :4] = False
    return x * mask.unsqueeze(-1), mask


def test_frequency_dropout_keeps_the_mean_and_the_padding():
    x, mask = window()
    out = frequency_dropout(x, mask, prob=0.5)
    assert not torch.allclose(out, x)
    full = mask.all(dim=1)
    assert torch.allclose(out[full].mean(dim=1), x[full].mean(dim=1), atol=1e-5)
    assert torch.all(out[~mask] == 0)
    assert torch.allclose(frequency_dropout(x, mask, prob=0.0), x, atol=1e-5)


def test_feature_noise_only_on_valid_days():
    x, mask = window()
    out = feature_noise(x, mask, std=0.1)
    assert torch.all(out[~mask] == 0)
    assert 0.05 < float((out - x)[mask].std()) < 0.2


def test_disabled_augmentation_returns_the_batch_itself():
    x, mask = window()
    batch = {"x": x, "mask": mask}
    assert augment_batch(batch, AugmentationConfig()) is batch
    noisy = augment_batch(batch, AugmentationConfig(feature_noise_std=0.1))
    assert noisy["x"] is not x and batch["x"] is x


def test_frequency_dropout_reaches_about_the_configured_share_of_batches():
    x, mask = window()
    batch = {"x": x, "mask": mask}
    cfg = AugmentationConfig(frequency_dropout_prob=0.5, frequency_dropout_batch_prob=0.3)
    torch.manual_seed(1)
    changed = [not torch.equal(augment_batch(batch, cfg)["x"], x) for _ in range(400)]
    assert 0.22 < sum(changed) / len(changed) < 0.38
    never = AugmentationConfig(frequency_dropout_prob=0.5, frequency_dropout_batch_prob=0.0)
    assert torch.equal(augment_batch(batch, never)["x"], x)
