"""Input augmentation for phase 4: feature noise and frequency dropout on the window [N, L, F].

Both act only on days where the stock has a row (`mask`), so padded days stay exactly 0, and both
draw from torch's global generator (seeded and restored with the rest of the training state) unless
a `generator` is given (DDP seeds one per day, so a day gets the same noise on whichever rank).

* feature noise: `x + σ·ε`, ε ~ N(0, 1), σ in the units of the scaled inputs (robust z-scores);
* frequency dropout: the rFFT of each stock's series along time, each bin except the mean (bin 0)
  zeroed with probability p independently per stock and feature, then the inverse rFFT. It perturbs
  the shape of the history (trend, cycles) while keeping its level. The two FFTs are the costly
  part of a step's augmentation, so it is applied to a random share `frequency_dropout_batch_prob`
  of the day batches (one draw per batch).
"""

from __future__ import annotations

from typing import Any

import torch

from atft_kedro.training.phases import AugmentationConfig


def feature_noise(
    x: torch.Tensor, mask: torch.Tensor, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x [N, L, F] + Gaussian noise of standard deviation `std` on valid days (mask [N, L])."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise * mask.unsqueeze(-1).to(x.dtype)


def frequency_dropout(
    x: torch.Tensor, mask: torch.Tensor, prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero each non-constant rFFT bin of x [N, L, F] along L with probability `prob`."""
    length = x.shape[1]
    spectrum = torch.fft.rfft(x.float(), dim=1)  # [N, L//2 + 1, F] complex
    keep = torch.rand(spectrum.shape, generator=generator, device=x.device) >= prob
    keep[:, 0] = True  # the mean of the window is left alone
    out = torch.fft.irfft(spectrum * keep, n=length, dim=1).to(x.dtype)
    return out * mask.unsqueeze(-1).to(x.dtype)


def augment_batch(
    batch: dict[str, Any], cfg: AugmentationConfig, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """A shallow copy of the day batch with augmented `x` (the batch itself is not modified)."""
    if not cfg.enabled:
        return batch
    x, mask = batch["x"], batch["mask"]
    use_frequency = cfg.frequency_dropout_prob > 0 and (
        cfg.frequency_dropout_batch_prob >= 1
        or bool(torch.rand((), generator=generator) < cfg.frequency_dropout_batch_prob)
    )
    if use_frequency:
        x = frequency_dropout(x, mask, cfg.frequency_dropout_prob, generator)
    if cfg.feature_noise_std > 0:
        x = feature_noise(x, mask, cfg.feature_noise_std, generator)
    return {**batch, "x": x}
