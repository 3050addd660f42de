"""Per-day reductions over a batch that stacks the cross-sections of D trading days.

A multi-day batch holds the stocks of D days one after another; ``Segments.index [N]`` (int64,
0..D−1, non-decreasing) names each stock's day. Every cross-sectional statistic of the loss (means,
z-scores, softmax, ranks, portfolio weights) must stay within its day, so each is one scatter or
gather over the index instead of a Python loop over days: a step's kernel count does not grow
with D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Segments:
    """The day of each stock of a multi-day batch: ``index [N]`` in 0..count−1."""

    index: torch.Tensor
    count: int

    @classmethod
    def of(cls, batch: dict[str, Any]) -> Segments | None:
        """The batch's days, or None for a one-day batch (it has no ``days`` entry)."""
        if "days" not in batch:
            return None
        return cls(batch["days"], int(batch["n_days"]))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of ``values [N, ...]`` per day → ``[D, ...]``."""
        out = values.new_zeros((self.count, *values.shape[1:]))
        return out.index_add_(0, self.index, values)

    def mean(self, values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Mean of ``values [N]`` over each day's valid stocks → ``[D]`` (0 for none)."""
        w = valid.to(values.dtype)
        return self.sum(values * w) / self.sum(w).clamp_min(1.0)

    def zscore(self, values: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
        """``(v − mean_d) / sqrt(var_d + eps)`` with the day's moments over its valid stocks."""
        w = valid.to(values.dtype)
        mean = self.mean(values, valid)[self.index]
        var = self.mean(((values - mean) * w) ** 2, valid)
        return (values - mean) / torch.sqrt(var + eps)[self.index]

    def log_softmax(self, logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """log softmax of ``logits [N]`` over each day's valid stocks (0 at invalid stocks)."""
        masked = torch.where(valid, logits, torch.full_like(logits, -torch.inf))
        top = logits.new_full((self.count,), -torch.inf).scatter_reduce(
            0, self.index, masked, reduce="amax"
        )
        shifted = masked - torch.nan_to_num(top, neginf=0.0)[self.index]
        exp = torch.where(valid, shifted.exp(), torch.zeros_like(shifted))
        total = self.sum(exp).clamp_min(torch.finfo(logits.dtype).tiny)
        return torch.where(valid, shifted - total.log()[self.index], torch.zeros_like(shifted))

    def average_rank(self, values: torch.Tensor) -> torch.Tensor:
        """1-based rank of each value within its day, ties sharing their average rank → ``[N]``."""
        n = values.shape[0]
        by_value = torch.argsort(values, stable=True)
        order = by_value[torch.argsort(self.index[by_value], stable=True)]  # by (day, value)
        v, d = values[order], self.index[order]
        new_group = torch.ones(n, dtype=torch.bool, device=values.device)
        new_group[1:] = (v[1:] != v[:-1]) | (d[1:] != d[:-1])
        group = torch.cumsum(new_group, 0) - 1  # tie group of each sorted position
        ones = torch.ones_like(values)
        group_size = values.new_zeros(n).index_add_(0, group, ones)
        group_start = torch.cumsum(group_size, 0) - group_size
        day_size = self.sum(ones)
        day_start = torch.cumsum(day_size, 0) - day_size
        rank = group_start[group] - day_start[d] + (group_size[group] + 1) / 2
        return torch.empty_like(rank).scatter_(0, order, rank)
