"""Frequency adaptive normalisation (FAN) of the input sequence [N, L, F].

Two forms:

* multi-window (default): for each trailing window w, `z_w = (x − μ_w)/(σ_w + ε)` with μ_w, σ_w the
  mean/std of s−w+1..s at every position s (valid days only; a shorter prefix at the start of the
  window). The candidates are {raw, w_1, …, w_W} with `z_raw = x` (clamped): normalising erases a
  feature's level (a constant-in-window feature such as a statement item, a flow or a mask becomes
  0), and the cross-sectional ranking needs levels, so FAN may learn to pass a feature through.
  They are combined as `Σ_k α_k z_k` with `α = softmax(MLP([μ_w, log σ_w]_w) + b_f)` over the W+1
  candidates per stock and feature, from the statistics of the window's last day t (the prediction
  date): the mixing follows the stock's current regime, and the MLP runs on N·F points instead of
  N·L·F. The raw candidate's logit comes from the same window statistics and its own per-feature
  bias, initialised to `RAW_LOGIT_INIT` so that FAN starts close to the identity (a warm-started
  model sees nearly the inputs it was trained on). z_w at position s uses nothing after s; α uses
  days up to t, all of which are known when predicting for t.
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
from atft_kedro.model.segments import Segments

RAW_LOGIT_INIT = 2.0  # initial logit of the raw candidate: α_raw ≈ 0.71 with three windows


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
    day with no valid day in its window gets mean 0, var 0. Window sums are differences of one
    cumulative sum of [valid, x, x²] (x shifted by its first day, for numerical stability), shared
    by all windows.
    """
    n_features, length = x.shape[-1], x.shape[1]
    ref = x[:, :1]
    xs = (x - ref) * valid
    cumulative = F.pad(torch.cat([valid, xs, xs * xs], dim=-1).cumsum(dim=1), (0, 0, 1, 0))
    end = cumulative[:, 1:]  # [N, L, 1+2F]: sums over days 0..t
    moments = []
    for w in windows:
        start = (torch.arange(length, device=x.device) - w + 1).clamp_min(0)
        count, total, total_sq = (end - cumulative[:, start]).split([1, n_features, n_features], -1)
        n = count.clamp_min(1.0)
        mean_s = total / n
        var = (total_sq / n - mean_s * mean_s).clamp_min(0.0)
        moments.append(((mean_s + ref) * (count > 0), var))
    return moments


class FAN(nn.Module):
    """x [N, L, F], mask [N, L] → (x̃ [N, L, F or 2F], aux scalar, interpretation dict)."""

    nonfinite_count: torch.Tensor  # buffer (registered in __init__)

    def __init__(self, n_features: int, cfg: FANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        n_windows = len(cfg.windows)
        # candidate-weight MLP [μ_w, log σ_w] (2W) → hidden → W+1 logits (raw first), shared by all
        # features, plus a per-feature bias
        self.weight_hidden = nn.Linear(2 * n_windows, cfg.mlp_hidden)
        self.weight_logits = nn.Linear(cfg.mlp_hidden, n_windows + 1)
        bias = torch.zeros(n_features, n_windows + 1)
        bias[:, 0] = RAW_LOGIT_INIT
        self.feature_logit_bias = nn.Parameter(bias)
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
        self, x: torch.Tensor, mask: torch.Tensor | None = None, seg: Segments | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``seg``: the days of a multi-day batch; the aux term is then the mean of each day's."""
        x = repair_nonfinite(x, self.nonfinite_count)
        if mask is None:
            valid = torch.ones_like(x[..., :1])  # [N, L, 1]
        else:
            valid = mask.unsqueeze(-1).to(x.dtype)
        if self.cfg.mode == "fourier":
            out, aux, info = self._fourier(x)
        else:
            out, aux, info = self._multi_window(x, valid, seg)
        out = repair_nonfinite(out, self.nonfinite_count)
        if self.cfg.mode != "fourier":
            out = out * valid
        return out, aux, info

    def _multi_window(
        self, x: torch.Tensor, valid: torch.Tensor, seg: Segments | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        zs, last_mu, last_log_sigma = [x.clamp(-cfg.clamp, cfg.clamp)], [], []
        for mu, var in trailing_moments(x, valid, cfg.windows):
            sigma = torch.sqrt(var + cfg.eps).clamp_min(cfg.sigma_floor)
            zs.append(((x - mu) / (sigma + cfg.eps)).clamp(-cfg.clamp, cfg.clamp))  # [N, L, F]
            last_mu.append(mu[:, -1].clamp(-cfg.clamp, cfg.clamp))
            last_log_sigma.append(sigma[:, -1].log())

        # Candidate weights from day t's statistics: [2W, N·F] through the shared MLP → [W+1, N, F].
        n_candidates, (n, _, f) = len(zs), x.shape
        stats = torch.stack(last_mu + last_log_sigma).flatten(1)
        fc1, fc2 = self.weight_hidden, self.weight_logits
        hidden = F.elu(torch.addmm(fc1.bias[:, None], fc1.weight, stats))
        logits = torch.addmm(fc2.bias[:, None], fc2.weight, hidden).view(n_candidates, n, f)
        alpha = (logits + self.feature_logit_bias.T[:, None, :]).softmax(dim=0)  # [W+1, N, F]
        out = sum(a.unsqueeze(1) * z for a, z in zip(alpha, zs, strict=True))

        present = valid.amax(dim=1).squeeze(-1)  # [N]: stocks with at least one valid day
        n_present = present.sum().clamp_min(1.0)
        entropy = -(alpha * alpha.clamp_min(1e-12).log()).sum(0)  # [N, F]
        gap = (1.0 - entropy / math.log(n_candidates)) * present[:, None]
        if seg is None:
            aux = gap.sum() / (n_present * f)
        else:
            aux = (seg.sum(gap.sum(-1)) / (seg.sum(present).clamp_min(1.0) * f)).mean()
        weights = (alpha * present[None, :, None]).sum(dim=1) / n_present  # [W+1, F]
        # [F, W+1]: column 0 is the raw series, then the windows in cfg.windows order
        return out, aux, {"fan_window_weights": weights.T.detach()}

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
