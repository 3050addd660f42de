"""Per-phase validation and test RankIC of the training phases on one or more walk-forward folds.

Trains the phases of `conf/base/parameters_training.yml` (optionally overridden) with the training
package directly (no Kedro session), then scores each phase's `best` checkpoint on the fold's test
dates. Baselines measured in the same run on the same dates: ridge, peer ridge, 20-day momentum and
the oracle (the planted expected return, the ceiling).

Needs the outputs of `kedro run --pipeline data_processing` and `kedro run --pipeline graph`
(`model_input.parquet`, `graph_edges.parquet`, `splits.json`) under `--data` (default `data/`):

    .venv/bin/python benchmarks/phase_ablation.py                       # all phases, all folds
    .venv/bin/python benchmarks/phase_ablation.py --phases 0 1 --folds 0 \
        --set training.model.hidden=64 --set training.phases.0.epochs=4

`--set KEY=VALUE` overrides a dotted key of the parameters (VALUE is parsed as YAML). Checkpoints go
to `--checkpoints` (a temporary folder by default); pointing two runs at the same folder lets a later
run start phase n from an earlier run's phase n−1.

Several markets: `--seeds 42 1 2 3` builds each seed's tables once (`kedro run --pipelines
data_processing,graph --params seed=S` in a throw-away copy of the project, kept under
benchmarks/results/ablation/seed<S>/), trains with that seed, and prints the mean test RankIC per
phase over the seeds next to the peer ridge's (a default is judged on several markets, not one):

    .venv/bin/python benchmarks/phase_ablation.py --seeds 42 1 2 3 --baselines \
        --set training.max_train_days_per_epoch=null --set training.phases.2.trainable=all
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import yaml

from atft_kedro.evaluation.baselines import baseline_inputs, fit_predict_baseline
from atft_kedro.features.labels import target_name
from atft_kedro.inference.predict import predict_days
from atft_kedro.loader.datasets import make_day_dataset
from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import (
    dates_between,
    fit_fold_scaler,
    fold_data,
    input_columns,
    trading_calendar,
)
from atft_kedro.training.fold_training import TrainingRun, train_fold
from atft_kedro.training.phases import parse_phase

ROOT = Path(__file__).resolve().parents[1]
ABLATION = ROOT / "benchmarks" / "results" / "ablation"
TABLES = (  # what training and the baselines read, relative to data/
    "05_model_input/model_input.parquet",
    "05_model_input/graph_edges.parquet",
    "04_feature/splits.json",
    "01_raw/market/oracle_alpha.parquet",
    "01_raw/market/alpha_components.parquet",
)


def prepare_seed(seed: int) -> Path:
    """data/-like folder with one seed's tables; built once by the real pipelines in a copy."""
    data = ABLATION / f"seed{seed}"
    if all((data / t).exists() for t in TABLES):
        return data
    with tempfile.TemporaryDirectory(prefix="ablation_project_") as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
        shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
        (project / "conf" / "local").mkdir()
        (project / "src").mkdir()  # Kedro checks that it exists; the package is installed
        for layer in (ROOT / "data").iterdir():
            if layer.is_dir():
                (project / "data" / layer.name).mkdir(parents=True)
        kedro = str(Path(sys.executable).with_name("kedro"))
        subprocess.run(
            [kedro, "run", "--pipelines", "data_processing,graph", "--params", f"seed={seed}"],
            cwd=project,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
            check=True,
        )
        for table in TABLES:
            (data / table).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / "data" / table, data / table)
    return data


def set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    node = params
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def mean_rank_ic(preds: pl.DataFrame, h: int = 1, min_stocks: int = 10) -> float:
    """Mean over days of Spearman(pred_{h}d, target_{h}d) across stocks."""
    p, t = f"pred_{h}d", f"target_{h}d"
    daily = (
        preds.filter(pl.col(p).is_not_null() & pl.col(p).is_finite() & pl.col(t).is_finite())
        .group_by("Date")
        .agg(pl.corr(pl.col(p).rank(), pl.col(t).rank()).alias("r"), pl.len().alias("n"))
        .filter(pl.col("n") >= min_stocks)
    )
    return float(daily["r"].mean())


def run_market(
    data: Path, cfg: TrainingConfig, seed: int, seq_len: int, args: argparse.Namespace
) -> list[dict]:
    """Train the phases on one market's folds; one row per (fold, phase), plus baseline rows.
    Everything fits and is scored on the label of ``cfg.label``."""
    label, horizons = cfg.label, list(cfg.model.horizons)
    features = data / "05_model_input" / "model_input.parquet"
    edges = data / "05_model_input" / "graph_edges.parquet"
    splits = json.loads((data / "04_feature" / "splits.json").read_text())
    calendar = trading_calendar(features)
    folds = [f for f in splits["folds"] if args.folds is None or f["fold"] in args.folds]
    job = TrainingRun(cfg, tuple(p for arg in args.phases for p in parse_phase(arg)), seed, seq_len)
    ckpt_dir = args.checkpoints or tempfile.mkdtemp(prefix="phase_ablation_")
    store = CheckpointStore(Path(ckpt_dir) / f"seed{seed}")
    rows = []
    for fold_split in folds:
        fold = int(fold_split["fold"])
        if args.train_days:
            train = dates_between(calendar, fold_split["train"])[-args.train_days :]
            fold_split = {**fold_split, "train": [str(train[0]), str(train[-1])]}
        scaler = fit_fold_scaler(features, fold_split, calendar, cfg.scaler, seed)
        fd = fold_data(
            features, edges, fold_split, calendar, scaler, cfg, seq_len=seq_len, seed=seed
        )
        records = train_fold(fd, job, store)
        test_data = None
        if not args.no_test:
            cols = input_columns(pl.read_parquet_schema(features).keys(), cfg.inputs)
            test_data = make_day_dataset(
                "in_memory",
                features_path=features,
                columns=[*cols[0], *cols[1]],
                horizons=horizons,
                seq_len=seq_len,
                scaler=scaler,
                graph_edges_path=edges,
                require_target=True,
                seed=seed,
                target=label,
                dates=dates_between(calendar, fold_split["test"]),
                shuffle=False,
            )
        for rec in records.values():
            epochs = rec["epochs"]
            row = {
                "seed": seed,
                "fold": fold,
                "phase": rec["phase"],
                "epochs": len(epochs),
                "best_epoch": rec["best_epoch"],
                "val_ric": rec["best_val_rank_ic"],
                "val_ric_by_epoch": [round(e["val_rank_ic_1d"] or np.nan, 4) for e in epochs],
                "s_per_epoch": float(np.mean([e["seconds"] for e in epochs])),
            }
            if test_data is not None:
                state = store.load(fold, rec["phase"], "best")
                model = ATFTGATFAN(ModelConfig.from_dict(state["model_config"]))
                model.load_state_dict(state["model_state"])
                preds = predict_days(model, test_data, horizons, model.cfg.quantiles)
                row["test_ric"] = mean_rank_ic(preds)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.baselines:
            feat = pl.read_parquet(features).with_columns(
                pl.col(target_name(h, label)).alias(f"target_{h}d") for h in horizons
            )
            oracle = pl.read_parquet(data / "01_raw" / "market" / "oracle_alpha.parquet")
            fc, mc = input_columns(feat.columns)
            ceiling = "oracle" if label == "close" else "oracle_next"
            for name in ("ridge", "peer_ridge", "momentum", ceiling):
                preds = fit_predict_baseline(
                    name,
                    feat,
                    splits,
                    fold,
                    horizons,
                    feature_cols=baseline_inputs(name, [*fc, *mc]),
                    seed=seed,
                    oracle_alpha=oracle,
                    n_threads=1,
                )
                row = {"seed": seed, "fold": fold, "phase": name, "test_ric": mean_rank_ic(preds)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data"))
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="several synthetic markets (overrides --data and the conf's seed)",
    )
    parser.add_argument("--conf", default=str(ROOT / "conf" / "base"))
    parser.add_argument("--phases", nargs="+", default=["all"])
    parser.add_argument("--folds", nargs="+", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--checkpoints", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--train-days",
        type=int,
        default=None,
        help="experiments only: train on the last K trading days of each fold's training block",
    )
    parser.add_argument("--no-test", action="store_true", help="skip the test-date scoring")
    parser.add_argument(
        "--baselines", action="store_true", help="ridge / peer ridge / momentum / oracle too"
    )
    args = parser.parse_args()

    conf = Path(args.conf)
    params: dict[str, Any] = {}
    for name in ("parameters.yml", "parameters_training.yml"):
        params |= yaml.safe_load((conf / name).read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        set_dotted(params, key, yaml.safe_load(value))
    params["training"] |= {"progress_bar": False, "threads": args.threads}
    cfg = TrainingConfig.from_params(
        params["training"], label=params["label"], horizons=params["horizons"]
    )
    seq_len = params["seq_len"]
    torch.set_num_threads(args.threads)
    print(
        f"overrides: {args.set or 'none'}; train days: {args.train_days or 'all'}; "
        f"label: {params['label']}"
    )

    markets = (
        [(s, prepare_seed(s)) for s in args.seeds]
        if args.seeds
        else [(params["seed"], Path(args.data))]
    )
    started = time.perf_counter()
    rows = [row for seed, data in markets for row in run_market(data, cfg, seed, seq_len, args)]
    print(f"\nwall time {time.perf_counter() - started:.0f} s (threads={args.threads})")
    print("seed fold phase epochs best  val_RankIC@1d  test_RankIC@1d  s/epoch")
    for r in rows:
        if "epochs" not in r:
            print(f"{r['seed']:>4} {r['fold']:>4} {r['phase']:>10}  test {r['test_ric']:+.4f}")
            continue
        print(
            f"{r['seed']:>4} {r['fold']:>4} {r['phase']:>5} {r['epochs']:>6} {r['best_epoch']:>4}  "
            f"{r['val_ric'] if r['val_ric'] is not None else float('nan'):>13.4f}  "
            f"{r.get('test_ric', float('nan')):>14.4f}  {r['s_per_epoch']:>7.1f}"
        )
    if "test_ric" in rows[0]:
        # Each seed's folds first (mean over folds), then the mean over seeds.
        table = pl.DataFrame(
            [{"seed": r["seed"], "phase": str(r["phase"]), "test_ric": r["test_ric"]} for r in rows]
        )
        by_seed = table.group_by("phase", "seed").agg(pl.col("test_ric").mean())
        summary = by_seed.group_by("phase", maintain_order=True).agg(
            pl.col("test_ric").mean().alias("mean"), pl.col("test_ric").round(4).alias("per_seed")
        )
        print("\nphase / baseline   test RankIC@1d, mean over seeds of the mean over folds")
        for r in summary.sort("phase").iter_rows(named=True):
            print(f"{r['phase']:>10}  {r['mean']:+.4f}  per seed {r['per_seed']}")


if __name__ == "__main__":
    main()
