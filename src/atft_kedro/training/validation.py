"""Validation of a model on chronological day batches: loss, per-day IC and RankIC per horizon.

IC is Pearson's correlation between the point prediction and the realised target across the stocks
of one day; RankIC is Spearman's (Pearson on ranks). Days with fewer than `min_stocks` finite
targets are skipped; the reported figure is the mean over the remaining days.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two 1-D tensors; NaN when either is constant."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = torch.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 of a 1-D tensor (ties broken by position; targets and scores are continuous)."""
    out = torch.empty_like(v, dtype=torch.float64)
    out[torch.argsort(v, stable=True)] = torch.arange(
        v.numel(), dtype=torch.float64, device=v.device
    )
    return out


def day_ic(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """(IC, RankIC) of one day over the stocks where `valid`."""
    p, y = pred[valid].float(), target[valid].float()
    return pearson(p, y), pearson(ranks(p), ranks(y))


def nan_mean(values: list[float]) -> float | None:
    """Mean of the finite values, None if there are none (JSON has no NaN)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a day batch (nested one level in y / y_mask / static) to `device`."""
    if device.type == "cpu":
        return batch
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif isinstance(value, dict):
            out[key] = {k: v.to(device, non_blocking=True) for k, v in value.items()}
        else:
            out[key] = value
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    batches: Iterable[dict[str, Any]],
    horizons: list[int],
    device: torch.device,
    min_stocks: int = 5,
) -> dict[str, Any]:
    """Mean validation loss and mean daily IC / RankIC per horizon (`ic_1d`, `rank_ic_1d`, ...)."""
    was_training = model.training
    model.eval()
    losses: list[float] = []
    ic: dict[int, list[float]] = {h: [] for h in horizons}
    rank_ic: dict[int, list[float]] = {h: [] for h in horizons}
    days = 0
    for batch in batches:
        batch = to_device(batch, device)
        if len(batch["codes"]) == 0:
            continue
        out = model(batch)
        loss, _ = loss_fn(out, batch, update_state=False)
        losses.append(float(loss))
        days += 1
        for h in horizons:
            valid = batch["y_mask"][h]
            if int(valid.sum()) >= min_stocks:
                a, b = day_ic(out["point"][h], batch["y"][h], valid)
                ic[h].append(a)
                rank_ic[h].append(b)
    model.train(was_training)
    metrics: dict[str, Any] = {"val_loss": nan_mean(losses), "val_days": days}
    for h in horizons:
        metrics[f"val_ic_{h}d"] = nan_mean(ic[h])
        metrics[f"val_rank_ic_{h}d"] = nan_mean(rank_ic[h])
    return metrics
