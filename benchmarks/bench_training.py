"""Training throughput per phase on CPU: samples (stock-days) per second, phase 0 as the baseline.

Size (documented, `small`-like): 300 stocks × 140 trading days, 60 features + 4 validity masks,
horizons 1/5/10/20, window L = 20, a random graph with ~10 out-edges per stock per day; the model and
phase settings of conf/base/parameters_training.yml with one epoch per phase on 100 training days
(validation 25 days). Every figure is measured in this run and printed as a ratio to phase 0.

    .venv/bin/python benchmarks/bench_training.py [--stocks 300] [--days 140] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from atft_kedro.datasets.parquet import write_day_major
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fit_fold_scaler, fold_data, trading_calendar
from atft_kedro.training.fold_training import TrainingRun, train_fold

HORIZONS = [1, 5, 10, 20]
SEQ_LEN = 20


def synthetic_features(n_stocks: int, n_days: int, n_features: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2022-01-03"), np.datetime64("2024-12-31"))
    days = days[np.is_busday(days)][:n_days]
    codes = np.array([f"{1300 + i:04d}0" for i in range(n_stocks)])
    n = n_days * n_stocks
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    x[rng.random((n, n_features)) < 0.02] = np.nan
    cols = {f"f{j:02d}": x[:, j] for j in range(n_features)}
    masks = {f"is_family{j}_valid": np.ones(n, np.int8) for j in range(4)}
    targets = {
        f"target_{h}d": (0.01 * np.nan_to_num(x[:, 0]) + 0.02 * rng.normal(size=n)).astype(
            np.float32
        )
        for h in HORIZONS
    }
    return pl.DataFrame(
        {
            "Date": pl.Series(np.repeat(days, n_stocks), dtype=pl.Date),
            "Code": np.tile(codes, n_days),
            "market": np.array(["0111", "0112", "0113"])[rng.integers(0, 3, n)],
            "sector33": np.array(["0050", "1050", "2050"])[rng.integers(0, 3, n)],
            "sector17": np.array(["1", "2"])[rng.integers(0, 2, n)],
            **cols,
            **masks,
            **targets,
        }
    )


def random_graph(features: pl.DataFrame, degree: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    codes = features["Code"].unique().sort().to_numpy()
    days = features["Date"].unique().sort().to_list()
    src = np.repeat(np.arange(codes.size), degree)
    dst = (src + rng.integers(1, codes.size, src.size)) % codes.size
    pairs = np.unique(np.concatenate([np.c_[src, dst], np.c_[dst, src]]), axis=0)
    e = pairs.shape[0]
    return pl.DataFrame(
        {
            "Date": pl.Series(np.repeat(np.array(days, dtype="datetime64[D]"), e), dtype=pl.Date),
            "src_code": np.tile(codes[pairs[:, 0]], len(days)),
            "dst_code": np.tile(codes[pairs[:, 1]], len(days)),
            "corr": rng.uniform(0.3, 0.9, e * len(days)).astype(np.float32),
            "same_market": rng.integers(0, 2, e * len(days)).astype(np.int8),
            "same_sector33": rng.integers(0, 2, e * len(days)).astype(np.int8),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=300)
    parser.add_argument("--days", type=int, default=140)
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    conf = yaml.safe_load(Path("conf/base/parameters_training.yml").read_text())["training"]
    params = copy.deepcopy(conf)
    params["progress_bar"] = False
    params["threads"] = args.threads
    params["inputs"] = None  # the generated features belong to no registry family
    for block in params["phases"].values():
        block["epochs"] = 1
    cfg = TrainingConfig.from_params(params, label="close", horizons=HORIZONS)  # target_{h}d
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        table = synthetic_features(args.stocks, args.days, args.features, seed=0)
        write_day_major(table, folder / "features.parquet", 1, "zstd")
        random_graph(table, degree=10, seed=0).write_parquet(folder / "edges.parquet")
        calendar = trading_calendar(folder / "features.parquet")
        iso = [d.isoformat() for d in calendar]
        split = {"fold": 0, "train": [iso[0], iso[99]], "val": [iso[110], iso[134]]}
        scaler = fit_fold_scaler(folder / "features.parquet", split, calendar, cfg.scaler, 0)
        data = fold_data(
            folder / "features.parquet",
            folder / "edges.parquet",
            split,
            calendar,
            scaler,
            cfg,
            seq_len=SEQ_LEN,
            seed=0,
        )
        started = time.perf_counter()
        job = TrainingRun(cfg, tuple(cfg.phases), seed=0, seq_len=SEQ_LEN)
        records = train_fold(data, job, CheckpointStore(folder / "ckpt"))
        total = time.perf_counter() - started
    print(
        f"training throughput, CPU, {args.threads} thread(s): {args.stocks} stocks × {args.days} days, "
        f"F = {args.features + 4}, L = {SEQ_LEN}, hidden = {cfg.model.hidden}, "
        f"{len(data.train)} training days per epoch (torch {__import__('torch').__version__}, "
        f"{dt.date.today()})"
    )
    base = None
    print(f"{'phase':<16}{'samples/s':>12}{'train s':>10}{'vs phase 0':>12}")
    for record in records.values():
        epoch = record["epochs"][0]
        sps = epoch["samples_per_s"]
        base = base or sps
        label = f"{record['phase']} {record['name']}"
        print(f"{label:<16}{sps:>12.0f}{epoch['train_seconds']:>10.1f}{sps / base:>11.2f}×")
    print(f"all five phases, one epoch each, with validation: {total:.1f} s")


if __name__ == "__main__":
    main()
