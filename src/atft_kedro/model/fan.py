"""Frequency adaptive normalisation (FAN) of the input sequence [N, L, F].

Two forms:

* multi-window (default): for each trailing window w, `z_w = (x − μ_w)/(σ_w + ε)` with μ_w, σ_w the
  mean/std of t−w+1..t (valid days only; a shorter prefix at the start of the window), combined as
  `Σ_w α_w z_w` with `α = softmax(MLP([μ_w, log σ_w]) + b_f)` per stock, day and feature.
  Position t uses nothing after t.
* fourier (Ye et al., 2024, "Frequency Adaptive Normalization for Non-stationary Time Series"):
  per series, the top-k amplitude components of the rFFT along time are removed; the residual and the
  removed (dominant, mostly low-frequency) part are both passed on, so the width doubles to 2F. The
  spectrum uses the whole window, all of which is known at the prediction date.

NaN-safe: non-finite inputs are counted in the buffer `nonfinite_count` and replaced by 0; σ has a
floor; z is clamped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from atft_kedro.model.config import FANConfig


def repair_nonfinite(x: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Replace NaN/±inf by 0 and add their number to `counter` (a 0-d long buffer)."""
    bad = ~torch.isfinite(x)
    n_bad = bad.sum()
    counter += n_bad.to(counter.dtype)
    return torch.where(bad, torch.zeros_like(x), x)


def trailing_moments(
    x: torch.Tensor, valid: torch.Tensor, windows: tuple[int, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Trailing mean and variance over days t−w+1..t for each window w, counting only valid days.

    x [N, L, F], valid [N, L, 1] (float 0/1) → [(mean, var)] with [N, L, F] each, one per window. A
    day with no valid day in its window gets mean 0, var 0. Window sums are differences of cumulative
    sums (computed once for all windows) of x shifted by its first day, for numerical stability.
    """
    ref = x[:, :1]
    xs = (x - ref) * valid
    cumulative = [v.cumsum(dim=1) for v in (valid, xs, xs * xs)]
    length = x.shape[1]
    moments = []
    for w in windows:
        count, total, total_sq = (c - F.pad(c, (0, 0, w, 0))[:, :length] for c in cumulative)
        n = count.clamp_min(1.0)
        mean_s = total / n
        var = (total_sq / n - mean_s * mean_s).clamp_min(0.0)
        moments.append(((mean_s + ref) * (count > 0), var))
    return moments


class FAN(nn.Module):
    """x [N, L, F], mask [N, L] → (x̃ [N, L, F or 2F], aux scalar, interpretation dict)."""

    def __init__(self, n_features: int, cfg: FANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        n_windows = len(cfg.windows)
        # window-weight MLP [μ_w, log σ_w] (2W) → hidden → W logits, shared by all features
        self.weight_hidden = nn.Linear(2 * n_windows, cfg.mlp_hidden)
        self.weight_logits = nn.Linear(cfg.mlp_hidden, n_windows)
        self.feature_logit_bias = nn.Parameter(torch.zeros(n_features, n_windows))
        self.register_buffer("nonfinite_count", torch.zeros((), dtype=torch.long), persistent=False)

    @property
    def out_features(self) -> int:
        return 2 * self.n_features if self.cfg.mode == "fourier" else self.n_features

    def identity(self, x: torch.Tensor) -> torch.Tensor:
        """What the model passes on when FAN is switched off (zeros for the Fourier channels)."""
        if self.cfg.mode == "fourier":
            return torch.cat([x, torch.zeros_like(x)], dim=-1)
        return x

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        x = repair_nonfinite(x, self.nonfinite_count)
        if mask is None:
            valid = torch.ones_like(x[..., :1])  # [N, L, 1]
        else:
            valid = mask.unsqueeze(-1).to(x.dtype)
        if self.cfg.mode == "fourier":
            out, aux, info = self._fourier(x)
        else:
            out, aux, info = self._multi_window(x, valid)
        out = repair_nonfinite(out, self.nonfinite_count)
        if self.cfg.mode != "fourier":
            out = out * valid
        return out, aux, info

    def _multi_window(
        self, x: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        zs, mus, log_sigmas = [], [], []
        for mu, var in trailing_moments(x, valid, cfg.windows):
            sigma = torch.sqrt(var + cfg.eps).clamp_min(cfg.sigma_floor)
            zs.append(((x - mu) / (sigma + cfg.eps)).clamp(-cfg.clamp, cfg.clamp))
            mus.append(mu.clamp(-cfg.clamp, cfg.clamp))
            log_sigmas.append(sigma.log())
        # Windows lead ([W, N, L, F]): the MLP and the softmax over W then run as a few large
        # matrix/elementwise ops instead of millions of length-W rows.
        n_windows = len(zs)
        z = torch.stack(zs)
        stats = torch.stack(mus + log_sigmas).flatten(1)  # [2W, N·L·F]
        fc1, fc2 = self.weight_hidden, self.weight_logits
        hidden = F.elu(torch.addmm(fc1.bias[:, None], fc1.weight, stats))
        logits = torch.addmm(fc2.bias[:, None], fc2.weight, hidden).view_as(z)
        logits = logits + self.feature_logit_bias.T[:, None, None, :]
        alpha = logits.softmax(dim=0)  # [W, N, L, F]
        out = (alpha * z).sum(dim=0)

        weight = valid.unsqueeze(0)  # [1, N, L, 1]
        if n_windows > 1:
            entropy = -(alpha * alpha.clamp_min(1e-12).log()).sum(0)  # [N, L, F]
            gap = (1.0 - entropy / math.log(n_windows)) * valid
            aux = gap.sum() / (valid.sum() * x.shape[-1]).clamp_min(1.0)
        else:
            aux = x.new_zeros(())
        window_weights = (alpha * weight).sum(dim=(1, 2)) / valid.sum(dim=(0, 1)).clamp_min(1.0)
        return out, aux, {"fan_window_weights": window_weights.T.detach()}  # [F, W]

    def _fourier(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        length = x.shape[1]
        spectrum = torch.fft.rfft(x, dim=1)  # [N, L//2+1, F]
        k = min(self.cfg.top_k, spectrum.shape[1])
        top = spectrum.abs().topk(k, dim=1).indices
        keep = torch.zeros(spectrum.shape, dtype=torch.bool, device=x.device).scatter(1, top, True)
        dominant = torch.fft.irfft(spectrum * keep, n=length, dim=1)  # [N, L, F]
        residual = (x - dominant).clamp(-self.cfg.clamp, self.cfg.clamp)
        out = torch.cat([residual, dominant.clamp(-self.cfg.clamp, self.cfg.clamp)], dim=-1)
        energy = (dominant**2).sum(dim=(0, 1)) / (x**2).sum(dim=(0, 1)).clamp_min(self.cfg.eps)
        return out, x.new_zeros(()), {"fan_removed_energy_share": energy.detach()}  # [F]
