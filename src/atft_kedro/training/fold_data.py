"""The data of one walk-forward fold: the model's input columns, the fold's scaler, its datasets.

The features table (docs/contracts.md) holds identifiers, then features, then `is_*_valid` masks,
then `universe` and `target_*`. The model reads the features of the families ``training.inputs``
followed by their masks (``input_columns``). Each fold's robust scaler is fitted on its training
dates only, over every feature (a model reading fewer families uses the same statistics); its
datasets are day batches of the training days (shuffled by (seed, fold, epoch)) and of the
validation days (chronological).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from atft_kedro.features import registry
from atft_kedro.loader.datasets import DayDataset, make_day_dataset
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.training.config import ScalerConfig, TrainingConfig, check_families

NON_FEATURE_COLUMNS = ("Date", "Code", "market", "sector33", "sector17", "universe")


def input_columns(
    columns: Sequence[str], families: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """(feature columns, validity-mask columns) of a features table, in table order; with
    ``families`` (registry families, ``training.inputs``) only theirs.

    The model's inputs are the features followed by the masks.
    """
    masks = [c for c in columns if c.startswith("is_") and c.endswith("_valid")]
    features = [
        c
        for c in columns
        if c not in NON_FEATURE_COLUMNS and c not in masks and not c.startswith("target_")
    ]
    if families is not None:
        chosen = set(check_families(families))
        features = [c for c in features if registry.family_of(c) in chosen]
        masks = [m for m in masks if registry.mask_family(m) in chosen]
    if not features:
        raise ValueError(f"features: no feature columns among {list(columns)}")
    return features, masks


def dates_between(calendar: Sequence[dt.date], bounds: Sequence[str | dt.date]) -> list[dt.date]:
    """Trading days of `calendar` within the inclusive range `[start, end]` of a split."""
    lo, hi = (np.datetime64(b, "D") for b in bounds)
    days = np.asarray(calendar, dtype="datetime64[D]")
    return days[(days >= lo) & (days <= hi)].astype(dt.date).tolist()


def trading_calendar(features_path: str | Path) -> list[dt.date]:
    """The distinct dates of the features table, ascending (reads the Date column only)."""
    dates = pq.read_table(features_path, columns=["Date"]).column("Date")
    return sorted(pc.unique(dates).to_pylist())


def selected_folds(splits: dict[str, Any], folds: Sequence[int] | None) -> list[dict[str, Any]]:
    """The folds of `splits` listed in ``folds`` (``training.folds``; None: all of them)."""
    by_id = {int(f["fold"]): f for f in splits["folds"]}
    if folds is None:
        return list(by_id.values())
    unknown = [f for f in folds if int(f) not in by_id]
    if unknown:
        raise ValueError(
            f"training.folds: fold(s) {unknown} not in splits.json (have {sorted(by_id)})"
        )
    return [by_id[int(f)] for f in folds]


def fit_fold_scaler(
    features_path: str | Path,
    fold_split: dict[str, Any],
    calendar: Sequence[dt.date],
    cfg: ScalerConfig,
    seed: int,
) -> OnlineRobustScaler:
    """OnlineRobustScaler of the feature columns (not the masks), fitted on the fold's TRAIN dates."""
    features, _ = input_columns(pq.read_schema(features_path).names)
    scaler = OnlineRobustScaler(
        features, clip=float(cfg.clip), reservoir_size=int(cfg.reservoir_size), seed=int(seed)
    )
    return scaler.fit_from_parquet(features_path, dates_between(calendar, fold_split["train"]))


def fit_scalers(
    features_path: str | Path, splits: dict[str, Any], cfg: TrainingConfig, seed: int
) -> dict[str, Any]:
    """{"fold{f}": OnlineRobustScaler statistics} fitted on each selected fold's training dates."""
    calendar = trading_calendar(features_path)
    return {
        f"fold{f['fold']}": fit_fold_scaler(features_path, f, calendar, cfg.scaler, seed).to_dict()
        for f in selected_folds(splits, cfg.folds)
    }


@dataclass
class FoldData:
    """The datasets of one fold: training days (shuffled per epoch) and validation days."""

    fold: int
    train: DayDataset
    val: DayDataset
    n_features: int


def fold_data(
    features_path: str | Path,
    graph_edges_path: str | Path | None,
    fold_split: dict[str, Any],
    calendar: Sequence[dt.date],
    scaler: OnlineRobustScaler,
    cfg: TrainingConfig,
    *,
    seq_len: int,
    seed: int,
) -> FoldData:
    """Day-batch datasets of a fold's training and validation dates (stocks with a target only),
    with the model inputs of ``cfg.inputs``, the targets of ``cfg.label`` at the model's
    horizons and the loader of ``cfg.loader``."""
    features, masks = input_columns(pq.read_schema(features_path).names, cfg.inputs)
    fold = int(fold_split["fold"])
    common: dict[str, Any] = {
        "features_path": features_path,
        "columns": [*features, *masks],
        "horizons": list(cfg.model.horizons),
        "seq_len": int(seq_len),
        "scaler": scaler,
        "graph_edges_path": graph_edges_path,
        "require_target": True,
        "seed": int(np.random.SeedSequence([int(seed), fold]).generate_state(1)[0] >> 1),
        "target": cfg.loader.target,
        "universe": cfg.loader.universe,
        "block_days": int(cfg.loader.block_days),
    }
    train_dates = dates_between(calendar, fold_split["train"])
    val_dates = dates_between(calendar, fold_split["val"])
    if not train_dates or not val_dates:
        raise ValueError(
            f"splits fold {fold}: {len(train_dates)} training and {len(val_dates)} validation "
            f"trading days in the features table (train {fold_split['train']}, val {fold_split['val']})"
        )
    make = cfg.loader.implementation
    return FoldData(
        fold=fold,
        train=make_day_dataset(make, dates=train_dates, shuffle=True, **common),
        val=make_day_dataset(make, dates=val_dates, shuffle=False, **common),
        n_features=len(features) + len(masks),
    )
