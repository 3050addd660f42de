"""Node of the predict pipeline: the best checkpoint scores every stock of the latest date."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import torch

from atft_kedro.datasets import DayMajorParquet
from atft_kedro.evaluation.selection import chosen_phases, validation_choice
from atft_kedro.inference.predict import (
    MODEL_NAME,
    PredictConfig,
    day_dataset,
    fitted,
    load_phase_model,
    predict_days,
    trained_phases,
)
from atft_kedro.loader.day_graph import edges_file
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_data import trading_calendar

if TYPE_CHECKING:
    from atft_kedro.model.atft_gat_fan import ATFTGATFAN

log = logging.getLogger(__name__)


def latest_graph(graph_edges: pl.DataFrame | None, day) -> pl.DataFrame | None:
    """The edges of the last graph built on or before ``day``, dated ``day``."""
    if graph_edges is None or graph_edges.height == 0:
        return None
    known = graph_edges.filter(pl.col("Date") <= day)
    if known.height == 0:
        return None
    return known.filter(pl.col("Date") == known["Date"].max()).with_columns(Date=pl.lit(day))


def choose_checkpoint(
    store: CheckpointStore,
    scalers: dict[str, Any],
    fold: int | None,
    phase: int | None,
    chosen: dict[int, int] | None = None,
) -> tuple[int, int]:
    """(fold, phase): the configured ones, else the latest fold with a scaler and its final
    model: the phase ``chosen`` on that fold's validation days (``selection.chosen_phases``),
    or its highest phase with a `best` checkpoint when no choice was recorded."""
    folds = sorted(int(k[4:]) for k in scalers if k.startswith("fold"))
    phases = trained_phases(store, folds)
    if not phases:
        raise FileNotFoundError(
            f"predict: no `best` checkpoint under {store.path} for folds {folds}: "
            "run `kedro run --pipeline training` first"
        )
    fold = max(phases) if fold is None else int(fold)
    if fold not in phases:
        raise ValueError(f"predict.fold: fold {fold} has no trained phase (have {sorted(phases)})")
    if phase is None:
        phase = (chosen or {}).get(fold, max(phases[fold]))
    if phase not in phases[fold]:
        raise ValueError(
            f"predict.phase: fold {fold} has no best checkpoint of phase {phase} "
            f"(have {phases[fold]}): run `kedro run --pipeline training --params phase={phase}`"
        )
    return fold, phase


def predict_signals_node(
    *,
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    scalers: dict[str, Any],
    checkpoints: CheckpointStore,
    training_metrics: dict[str, Any],
    predict: dict[str, Any],
    seq_len: int,
) -> pl.DataFrame:
    """Signals for the latest date of ``features``: Date, Code, score (the median prediction at
    ``predict.horizon``), q{q} (its quantiles), rank (1 = highest score), investable (1 where the
    stock is in the investable universe that day, 0 otherwise), horizon, fold, phase, label (the
    target the model was fitted to: next_close = trade at the next session's close)."""
    cfg = PredictConfig.from_params(predict)
    torch.set_num_threads(int(cfg.threads or 1))
    folds = [int(k[4:]) for k in scalers if k.startswith("fold")]
    chosen = chosen_phases(validation_choice(training_metrics or {}, folds))
    fold, phase = choose_checkpoint(checkpoints, scalers, cfg.fold, cfg.phase, chosen)
    model = load_phase_model(checkpoints, fold, phase)
    horizon = int(cfg.horizon)
    if horizon not in model.cfg.horizons:
        raise ValueError(
            f"predict.horizon: {horizon} is not a horizon of the model ({list(model.cfg.horizons)})"
        )
    day = trading_calendar(features.path)[-1]
    scaler = OnlineRobustScaler.from_dict(scalers[f"fold{fold}"])
    preds = _predict_day(
        checkpoints, fold, phase, model, features, graph_edges, day, scaler, seq_len
    )
    log.info("predict: %d stocks on %s from fold %d phase %d", preds.height, day, fold, phase)
    return _signals(preds, features, day, horizon, model.cfg.quantiles)


def _predict_day(
    checkpoints: CheckpointStore,
    fold: int,
    phase: int,
    model: ATFTGATFAN,
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    day: dt.date,
    scaler: OnlineRobustScaler,
    seq_len: int,
) -> pl.DataFrame:
    """The predictions of ``model`` (fold, phase) for every stock of ``day``, on the last graph
    built by then (``predict_days``'s table: one row per stock)."""
    with tempfile.TemporaryDirectory(prefix="atft_predict_") as folder:
        edges = edges_file(latest_graph(graph_edges, day), Path(folder))
        fit = fitted(checkpoints, fold, phase)
        data = day_dataset(
            features.path,
            fit.columns(features.columns),
            edges,
            [day],
            scaler,
            horizons=list(model.cfg.horizons),
            seq_len=seq_len,
        )
        return predict_days(
            model,
            data,
            model.cfg.horizons,
            model.cfg.quantiles,
            model_name=MODEL_NAME,
            fold=fold,
            phase=phase,
            label=fit.label,
        )


def _signals(
    preds: pl.DataFrame,
    features: DayMajorParquet,
    day: dt.date,
    horizon: int,
    quantiles: Sequence[float],
) -> pl.DataFrame:
    """The signals table of ``day`` from its predictions at ``horizon`` (sorted by rank)."""
    columns = [pl.col(f"q{q:g}_{horizon}d").alias(f"q{q:g}") for q in quantiles]
    universe = features.scan().filter(pl.col("Date") == day).select("Code", "universe").collect()
    preds = preds.join(universe, on="Code", how="left")
    return preds.select(
        "Date",
        "Code",
        pl.col(f"pred_{horizon}d").alias("score"),
        *columns,
        pl.col(f"pred_{horizon}d").rank("ordinal", descending=True).cast(pl.Int32).alias("rank"),
        pl.col("universe").fill_null(0).cast(pl.Int8).alias("investable"),
        pl.lit(horizon, pl.Int32).alias("horizon"),
        "fold",
        "phase",
        "label",
    ).sort("rank")
