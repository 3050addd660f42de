"""Per-horizon quantile heads, monotone by construction.

For quantile levels τ₁ < … < τ_Q with τ_m = 0.5, a head predicts the median q_m and positive gaps:
`q_{m+j} = q_m + Σ_{i≤j} softplus(d⁺_i)`, `q_{m−j} = q_m − Σ_{i≤j} softplus(d⁻_i)`, so the quantiles
never cross. The point prediction is the median.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MonotoneQuantileHead(nn.Module):
    """z [N, H] → quantiles [N, Q], increasing along Q."""

    def __init__(self, hidden: int, quantiles: tuple[float, ...], dropout: float) -> None:
        super().__init__()
        self.median_index = quantiles.index(0.5)
        self.n_quantiles = len(quantiles)
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(quantiles)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raw = self.net(z)  # [N, Q]: column m is the median, the others are gaps
        m = self.median_index
        median = raw[:, m : m + 1]
        above = median + F.softplus(raw[:, m + 1 :]).cumsum(dim=-1)
        below = median - F.softplus(raw[:, :m].flip(-1)).cumsum(dim=-1)
        return torch.cat([below.flip(-1), median, above], dim=-1)


class QuantileHeads(nn.Module):
    """One head per horizon: z [N, H] → {h: quantiles [N, Q]}."""

    def __init__(
        self, hidden: int, horizons: tuple[int, ...], quantiles: tuple[float, ...], dropout: float
    ):
        super().__init__()
        self.horizons = horizons
        self.median_index = quantiles.index(0.5)
        self.per_horizon = nn.ModuleDict(
            {str(h): MonotoneQuantileHead(hidden, quantiles, dropout) for h in horizons}
        )

    def forward(self, z: torch.Tensor) -> dict[int, torch.Tensor]:
        return {h: self.per_horizon[str(h)](z) for h in self.horizons}
