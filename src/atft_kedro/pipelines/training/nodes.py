"""Nodes of the training pipeline: catalog objects in, `atft_kedro.training` calls, JSON out."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.training.checkpoints import CheckpointStore, plain
from atft_kedro.training.fold_training import (
    fit_fold_scaler,
    fold_data,
    trading_calendar,
    train_fold,
)
from atft_kedro.training.inference import edges_file
from atft_kedro.training.phases import phase_plan
from atft_kedro.training.trainer import LoopConfig

log = logging.getLogger(__name__)


def selected_folds(splits: dict[str, Any], training: dict[str, Any]) -> list[dict[str, Any]]:
    """The folds of `splits` listed in `training.folds` (null: all of them)."""
    folds = {int(f["fold"]): f for f in splits["folds"]}
    wanted = training.get("folds")
    if wanted is None:
        return list(folds.values())
    unknown = [f for f in wanted if int(f) not in folds]
    if unknown:
        raise ValueError(
            f"training.folds: fold(s) {unknown} not in splits.json (have {sorted(folds)})"
        )
    return [folds[int(f)] for f in wanted]


def fit_scalers_node(
    features: DayMajorParquet, splits: dict[str, Any], training: dict[str, Any], seed: int
) -> dict[str, Any]:
    """{"fold{f}": OnlineRobustScaler statistics} fitted on each selected fold's training dates."""
    calendar = trading_calendar(features.path)
    return {
        f"fold{f['fold']}": fit_fold_scaler(
            features.path, f, calendar, training.get("scaler") or {}, seed
        ).to_dict()
        for f in selected_folds(splits, training)
    }


def train_phases_node(
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    scalers: dict[str, Any],
    checkpoints: CheckpointStore,
    training: dict[str, Any],
    phase: int | str,
    resume_checkpoint: str | None,
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> dict[str, dict[str, Any]]:
    """Train `phase` (0–4 or "all") on every selected fold; checkpoints go to `checkpoints`.

    Returns one metrics record per (fold, phase), saved as `fold{f}_phase{p}.json`.
    """
    plan = phase_plan(training, phase)
    loop = LoopConfig.from_params(training)
    loader = training.get("loader") or {}
    calendar = trading_calendar(features.path)
    run = plain({"training": training, "phase": phase, "seed": seed, "horizons": horizons,
                 "seq_len": seq_len, "resume_checkpoint": resume_checkpoint})  # fmt: skip
    records: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="atft_graph_") as folder:
        edges = edges_file(graph_edges, Path(folder))
        for fold_split in selected_folds(splits, training):
            key = f"fold{fold_split['fold']}"
            if key not in scalers:
                raise KeyError(f"scalers: no statistics for {key}; run fit_scalers_node first")
            data = fold_data(
                features.path, edges, fold_split, calendar, OnlineRobustScaler.from_dict(scalers[key]),
                horizons=horizons, seq_len=seq_len, loader=loader, seed=seed,
            )  # fmt: skip
            log.info(
                "%s: phases %s on %d training / %d validation days",
                key, [p.phase for p in plan], len(data.train), len(data.val),
            )  # fmt: skip
            records |= train_fold(
                data, plan, loop, training.get("model") or {}, checkpoints,
                seed=seed, horizons=horizons, threads=training.get("threads"),
                resume_checkpoint=resume_checkpoint, params=run,
            )  # fmt: skip
    return records
