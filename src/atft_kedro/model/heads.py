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
    """One head per horizon: z [N, H] → {h: quantiles [N, Q]}.

    With ``n_linear`` > 0 a linear map of the day's own inputs x_t [N, n_linear] shifts every
    quantile of a horizon alike (they stay monotone): a linear model beside the network, which
    keeps what a ridge would find in a weak, mostly linear signal while the network adds what is
    not linear. Zero-initialised, so a new model starts as the network alone.
    """

    def __init__(
        self,
        hidden: int,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
        dropout: float,
        n_linear: int = 0,
    ):
        super().__init__()
        self.horizons = horizons
        self.median_index = quantiles.index(0.5)
        self.per_horizon = nn.ModuleDict(
            {str(h): MonotoneQuantileHead(hidden, quantiles, dropout) for h in horizons}
        )
        self.linear = nn.Linear(n_linear, len(horizons)) if n_linear else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(
        self, z: torch.Tensor, x_last: torch.Tensor | None = None
    ) -> dict[int, torch.Tensor]:
        out = {h: self.per_horizon[str(h)](z) for h in self.horizons}
        if self.linear is not None and x_last is not None:
            shift = self.linear(x_last)  # [N, n_horizons]
            out = {h: q + shift[:, k : k + 1] for k, (h, q) in enumerate(out.items())}
        return out
