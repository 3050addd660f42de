"""Slice adaptive normalisation (SAN; after Liu et al., 2023) of the sequence [N, L, F].

The window of L days is cut into K overlapping slices (length s, neighbours sharing `overlap`·s days).
Each slice is normalised by its own mean/std over its valid days and given a learnable per-slice,
per-feature affine map; the slices are recombined by weighted overlap-add:

    out_t = Σ_k c_kt (γ_k (x_t − μ_k)/σ_k + β_k),   c_kt = π_k h_kt 1[t ∈ k] / Σ_j π_j h_jt 1[t ∈ j]

with π = softmax(slice logits) the learnable slice weights and h a triangular taper that favours a
day's position near the centre of a slice. Every slice lies inside the window, so no day after the
prediction date is used. The recombination is computed from per-slice statistics [N, K, F] without
materialising [N, K, L, F].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from atft_kedro.model.config import SANConfig
from atft_kedro.model.fan import repair_nonfinite


def slice_membership(
    length: int, n_slices: int, overlap: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slices of a window of `length` days → (membership [K, L] 0/1, taper [K, L] > 0 inside).

    Slice length s = ceil(L / (1 + (K−1)(1−overlap))), starts spread evenly over 0..L−s, so the
    slices cover every day. With L=20, K=4, overlap 0.5: [0,8), [4,12), [8,16), [12,20).
    """
    size = max(1, min(length, math.ceil(length / (1 + (n_slices - 1) * (1 - overlap)))))
    starts = torch.linspace(0, length - size, n_slices).round().long()
    t = torch.arange(length)
    offset = t[None, :] - starts[:, None]  # [K, L]
    member = ((offset >= 0) & (offset < size)).double()
    centre = (size - 1) / 2
    taper = 1.0 - (offset - centre).abs() / (centre + 1.0)  # triangular, ≥ 1/(centre+1) inside
    return member, taper.clamp_min(0.0) * member


class SAN(nn.Module):
    """x [N, L, F], mask [N, L] → (x̃ [N, L, F], aux scalar, interpretation dict)."""

    nonfinite_count: torch.Tensor  # buffer (registered in __init__)

    def __init__(self, n_features: int, cfg: SANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gamma = nn.Parameter(torch.ones(cfg.n_slices, n_features))
        self.beta = nn.Parameter(torch.zeros(cfg.n_slices, n_features))
        self.slice_logits = nn.Parameter(torch.zeros(cfg.n_slices))
        self.register_buffer("nonfinite_count", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        x = repair_nonfinite(x, self.nonfinite_count)
        valid = torch.ones_like(x[..., 0]) if mask is None else mask.to(x.dtype)  # [N, L]
        member, taper = (m.to(x) for m in slice_membership(x.shape[1], cfg.n_slices, cfg.overlap))

        # Each slice removes its own level, so centring the series first changes nothing but the
        # floating-point cancellation in the factorised form below.
        v3 = valid.unsqueeze(-1)
        x = x - (x * v3).sum(1, keepdim=True) / v3.sum(1, keepdim=True).clamp_min(1.0)

        # Per-slice statistics over valid days: [N, K, F].
        w = member[None] * valid[:, None, :]  # [N, K, L]
        count = w.sum(-1, keepdim=True).clamp_min(1.0)
        mu = torch.einsum("nkl,nlf->nkf", w, x) / count
        var = (torch.einsum("nkl,nlf->nkf", w, x * x) / count - mu * mu).clamp_min(0.0)
        sigma = torch.sqrt(var + cfg.eps).clamp_min(cfg.sigma_floor)

        pi = self.slice_logits.softmax(0)
        c = pi[:, None] * taper  # [K, L]
        c = c / c.sum(0, keepdim=True)
        scale = self.gamma / sigma  # [N, K, F]
        shift = self.beta - scale * mu
        out = torch.einsum("kl,nkf,nlf->nlf", c, scale, x) + torch.einsum("kl,nkf->nlf", c, shift)
        # |z| ≤ clamp within a slice bounds the overlap-add by clamp·max|γ| + max|β|.
        bound = cfg.clamp * self.gamma.abs().max().detach() + self.beta.abs().max().detach()
        out = out.clamp(-bound, bound) * v3
        out = repair_nonfinite(out, self.nonfinite_count)

        aux = ((self.gamma - 1.0) ** 2).mean() + (self.beta**2).mean()
        return out, aux, {"san_slice_weights": pi.detach(), "san_slices": member.detach()}
