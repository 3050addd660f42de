"""Predictions of a trained model over chronological day batches, in the `predictions` contract.

`predict_days` returns one row per (Date, Code): `Date, Code, model, fold, phase, pred_{h}d,
q{q}_{h}d, target_{h}d` (docs/contracts.md); targets keep NaN where the future is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch
from torch import nn

from atft_kedro.loader.datasets import DayDataset, day_loader
from atft_kedro.training.validation import to_device


@torch.no_grad()
def predict_days(
    model: nn.Module,
    dataset: DayDataset,
    horizons: Sequence[int],
    quantiles: Sequence[float],
    *,
    model_name: str = "atft_gat_fan",
    fold: int | None = None,
    phase: int | None = None,
    device: str | torch.device = "cpu",
) -> pl.DataFrame:
    """Run `model` on every day of `dataset` (not shuffled) and stack the day predictions."""
    device = torch.device(device)
    model.to(device).eval()
    dataset.set_epoch(0)
    columns: dict[str, list[np.ndarray]] = {"Date": [], "Code": []}
    for h in horizons:
        columns[f"pred_{h}d"], columns[f"target_{h}d"] = [], []
        for q in quantiles:
            columns[f"q{q:g}_{h}d"] = []
    for batch in day_loader(dataset, 0):
        n = len(batch["codes"])
        if n == 0:
            continue
        out = model(to_device(batch, device))
        columns["Date"].append(np.full(n, np.datetime64(batch["date"], "D")))
        columns["Code"].append(np.asarray(batch["codes"], dtype=object))
        for h in horizons:
            columns[f"pred_{h}d"].append(out["point"][h].float().cpu().numpy())
            columns[f"target_{h}d"].append(batch["y"][h].numpy())
            q_out = out["quantiles"][h].float().cpu().numpy()
            for j, q in enumerate(quantiles):
                columns[f"q{q:g}_{h}d"].append(q_out[:, j])
    data = {k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()}
    frame = pl.DataFrame(
        {
            "Date": pl.Series(data["Date"].astype("datetime64[D]"), dtype=pl.Date),
            "Code": pl.Series(data["Code"].tolist(), dtype=pl.Utf8),
        }
    ).with_columns(
        pl.lit(model_name, pl.Utf8).alias("model"),
        pl.lit(fold, pl.Int32).alias("fold"),
        pl.lit(phase, pl.Int32).alias("phase"),
        *[
            pl.Series(name, data[name].astype(np.float32), dtype=pl.Float32)
            for name in columns
            if name not in ("Date", "Code")
        ],
    )
    order = ["Date", "Code", "model", "fold", "phase"]
    order += [f"pred_{h}d" for h in horizons]
    order += [f"q{q:g}_{h}d" for h in horizons for q in quantiles]
    order += [f"target_{h}d" for h in horizons]
    return frame.select(order).sort("Date", "Code")
