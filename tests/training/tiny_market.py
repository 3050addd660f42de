"""A tiny market for training tests: 8 codes × 60 trading days, a planted signal, a full graph."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from atft_kedro.features.day_major import write_day_major_parquet
from atft_kedro.training.config import TrainingConfig

CODES = ["13010", "13050", "130A0", "13320", "13330", "14140", "16050", "72030"]
HORIZONS = [1, 5]
SEQ_LEN = 8
N_DAYS = 60


def trading_days(n: int) -> list[dt.date]:
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-12-31"))
    return days[np.is_busday(days)][:n].astype(dt.date).tolist()


def tiny_features(seed: int = 0, n_days: int = N_DAYS) -> pl.DataFrame:
    """Contract-shaped features: 3 features (one sometimes missing), one mask, 2 targets in two
    views (close to close and the default label, next-session entry: the signal persists)."""
    rng = np.random.default_rng(seed)
    days = trading_days(n_days)
    date = np.repeat(np.array(days, dtype="datetime64[D]"), len(CODES))
    code = np.tile(CODES, n_days)
    n = date.size
    signal = rng.normal(size=n)
    sparse = rng.normal(size=n)
    sparse[rng.random(n) < 0.2] = np.nan
    t1 = 0.02 * signal + 0.01 * rng.normal(size=n)
    t5 = 0.03 * signal + 0.02 * rng.normal(size=n)
    t1[date >= np.datetime64(days[-1])] = np.nan
    t5[date >= np.datetime64(days[-5])] = np.nan
    n1 = 0.02 * signal + 0.01 * rng.normal(size=n)
    n5 = 0.03 * signal + 0.02 * rng.normal(size=n)
    n1[date >= np.datetime64(days[-2])] = np.nan
    n5[date >= np.datetime64(days[-6])] = np.nan
    return pl.DataFrame(
        {
            "Date": pl.Series(date, dtype=pl.Date),
            "Code": code,
            "market": np.array(["0111", "0112", "0113"])[rng.integers(0, 3, n)],
            "sector33": np.array(["0050", "1050", "2050"])[rng.integers(0, 3, n)],
            "sector17": np.array(["1", "2"])[rng.integers(0, 2, n)],
            "f_signal": signal.astype(np.float32),
            "f_noise": rng.normal(size=n).astype(np.float32),
            "f_sparse": sparse.astype(np.float32),
            "is_sparse_valid": np.isfinite(sparse).astype(np.int8),
            "target_1d": t1.astype(np.float32),
            "target_5d": t5.astype(np.float32),
            "target_next_1d": n1.astype(np.float32),
            "target_next_5d": n5.astype(np.float32),
        }
    )


def full_graph(days: list[dt.date]) -> pl.DataFrame:
    """Every ordered pair of distinct codes on every day, sorted by Date."""
    src, dst = np.meshgrid(CODES, CODES, indexing="ij")
    off = src != dst
    src, dst = src[off], dst[off]
    n = len(days) * src.size
    return pl.DataFrame(
        {
            "Date": pl.Series(
                np.repeat(np.array(days, dtype="datetime64[D]"), src.size), dtype=pl.Date
            ),
            "src_code": np.tile(src, len(days)),
            "dst_code": np.tile(dst, len(days)),
            "corr": np.full(n, 0.5, dtype=np.float32),
            "same_market": np.zeros(n, dtype=np.int8),
            "same_sector33": np.ones(n, dtype=np.int8),
        }
    )


def tiny_splits(days: list[dt.date]) -> dict:
    iso = [d.isoformat() for d in days]
    return {
        "n_splits": 1,
        "purge_days": 2,
        "embargo_days": 0,
        "seq_len": SEQ_LEN,
        "max_horizon": 5,
        "folds": [
            {
                "fold": 0,
                "train": [iso[0], iso[34]],
                "val": [iso[37], iso[52]],
                "test": [iso[55], iso[59]],
            }
        ],
    }


def write_market(folder: Path, features: pl.DataFrame | None = None) -> dict:
    """The tiny market's files in `folder` (features day-major, one day per row group; the full
    graph) and its splits; `features` replaces tiny_features()."""
    days = trading_days(N_DAYS)
    path = folder / "features.parquet"
    frame = tiny_features() if features is None else features
    write_day_major_parquet(frame, path, days_per_row_group=1, compression="zstd")
    edges = folder / "graph_edges.parquet"
    full_graph(days).write_parquet(edges)
    return {"features": path, "graph_edges": edges, "splits": tiny_splits(days), "days": days}


def tiny_training_params(epochs: int = 1) -> dict:
    """`training` parameters sized for tests: hidden 8, one or two epochs per phase."""
    base = {"epochs": epochs, "patience": 5, "loss": {"rank_weight": 0.1}}
    return {
        "folds": None,
        "device": "cpu",
        "threads": 1,
        "inputs": None,  # f_signal, f_noise, f_sparse belong to no registry family
        "loader": {"implementation": "in_memory", "num_workers": 0},
        "scaler": {"clip": 5.0, "reservoir_size": 10000},
        "model": {
            "hidden": 8,
            "attn_heads": 2,
            "dropout": 0.1,
            "fan": {"windows": [2, 4], "mlp_hidden": 4},
            "san": {"n_slices": 2},
            "gat": {"heads": 2, "n_layers": 1},
        },
        "optimizer": {"weight_decay": 0.01},
        "schedule": {"warmup_days": 5, "min_lr_ratio": 0.1},
        "grad_clip": 1.0,
        "early_stop_horizon": 1,
        "min_stocks_per_day": 3,
        "max_nonfinite_share": 0.5,
        "progress_bar": False,
        "phases": {
            "0": {**base, "name": "baseline", "lr": 1e-3},
            "1": {**base, "name": "adaptive_norm", "use_fan": True, "use_san": True, "lr": 5e-4},
            "2": {
                **base,
                "name": "graph",
                "use_fan": True,
                "use_san": True,
                "use_gat": True,
                "lr": 3e-4,
            },
            "3": {
                **base,
                "name": "fine_tune",
                "use_fan": True,
                "use_san": True,
                "use_gat": True,
                "lr": 1e-4,
                "loss": {"rank_weight": 0.5, "sharpe_weight": 0.1},
            },
            "4": {
                **base,
                "name": "augment_swa",
                "use_fan": True,
                "use_san": True,
                "use_gat": True,
                "lr": 5e-5,
                "augmentation": {"feature_noise_std": 0.05, "frequency_dropout_prob": 0.1},
                "averaging": {"kind": "swa"},
            },
        },
    }


def tiny_config(params: dict | None = None, label: str = "next_close") -> TrainingConfig:
    """``params`` (default: ``tiny_training_params()``) parsed as the training node does."""
    block = tiny_training_params() if params is None else params
    return TrainingConfig.from_params(block, label=label, horizons=HORIZONS)
