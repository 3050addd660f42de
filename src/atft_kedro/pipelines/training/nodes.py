"""Nodes of the training pipeline: catalog objects in, `atft_kedro.training` calls, JSON out."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.loader.day_graph import edges_file
from atft_kedro.training.checkpoints import CheckpointStore, plain
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fit_scalers
from atft_kedro.training.fold_training import TrainingRun, train_folds

log = logging.getLogger(__name__)


def fit_scalers_node(
    features: DayMajorParquet,
    splits: dict[str, Any],
    training: dict[str, Any],
    label: str,
    horizons: list[int],
    seed: int,
) -> dict[str, Any]:
    """{"fold{f}": OnlineRobustScaler statistics} fitted on each selected fold's training dates."""
    cfg = TrainingConfig.from_params(plain(training), label=label, horizons=horizons)
    return fit_scalers(features.path, splits, cfg, seed)


def train_phases_node(
    *,
    model_input: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    scalers: dict[str, Any],
    checkpoints: CheckpointStore,
    training: dict[str, Any],
    label: str,
    phase: int | str,
    resume_checkpoint: str | None,
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> dict[str, dict[str, Any]]:
    """Train `phase` (0–4 or "all") on every selected fold, fitting the global `label`;
    checkpoints go to `checkpoints`.

    Returns one metrics record per (fold, phase), saved as `fold{f}_phase{p}.json`.
    """
    job = TrainingRun.from_params(
        plain(training),
        label=label,
        phase=phase,
        seed=seed,
        horizons=horizons,
        seq_len=seq_len,
        resume_checkpoint=resume_checkpoint,
    )
    with tempfile.TemporaryDirectory(prefix="atft_graph_") as folder:
        edges = edges_file(graph_edges, Path(folder))
        return train_folds(model_input.path, edges, splits, scalers, checkpoints, job)
