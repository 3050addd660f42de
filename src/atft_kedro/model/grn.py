"""Gated building blocks of the Temporal Fusion Transformer (Lim et al., 2021, section 4.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GLU(nn.Module):
    """Gated linear unit: `GLU(a) = σ(W₁a + b₁) ⊙ (W₂a + b₂)`, [..., d_in] → [..., d_out]."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(d_in, 2 * d_out)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return F.glu(self.proj(self.dropout(a)), dim=-1)


class GatedSkip(nn.Module):
    """`LayerNorm(skip + GLU(x))`: the TFT's gate-add-norm step, [..., d] → [..., d]."""

    def __init__(self, d: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.glu = GLU(d, d, dropout)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.norm(skip + self.glu(x))


class GRN(nn.Module):
    """Gated residual network with optional context c.

    `η₂ = ELU(W₂a + W₃c + b₂)`, `η₁ = W₁η₂ + b₁`, `GRN(a, c) = LayerNorm(skip(a) + GLU(η₁))`,
    where skip is the identity when d_in == d_out and a linear map otherwise.
    a [..., d_in], c [..., d_context] (broadcastable) → [..., d_out].
    """

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        d_out: int,
        d_context: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)
        self.fc_in = nn.Linear(d_in, d_hidden)
        self.fc_context = nn.Linear(d_context, d_hidden, bias=False) if d_context else None
        self.fc_hidden = nn.Linear(d_hidden, d_hidden)
        self.glu = GLU(d_hidden, d_out, dropout)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, a: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc_in(a)
        if self.fc_context is not None and context is not None:
            h = h + self.fc_context(context)
        h = self.fc_hidden(F.elu(h))
        return self.norm(self.skip(a) + self.glu(h))
