"""Per-phase validation and test RankIC of the training phases on one or more walk-forward folds.

Trains the phases of `conf/base/parameters_training.yml` (optionally overridden) with the training
package directly (no Kedro session), then scores each phase's `best` checkpoint on the fold's test
dates. Baselines measured in the same run on the same dates: ridge, 20-day momentum, and the oracle
(the planted expected return, the ceiling) — each figure is printed with its ratio to the oracle.

Needs the outputs of `kedro run --pipeline data_processing` and `kedro run --pipeline graph` under
`--data` (default `data/`):

    .venv/bin/python benchmarks/phase_ablation.py                       # all phases, all folds
    .venv/bin/python benchmarks/phase_ablation.py --phases 0 1 --folds 0 \
        --set training.model.hidden=64 --set training.phases.0.epochs=4

`--set KEY=VALUE` overrides a dotted key of the parameters (VALUE is parsed as YAML). Checkpoints go
to `--checkpoints` (a temporary folder by default); pointing two runs at the same folder lets a later
run start phase n from an earlier run's phase n−1.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import yaml

from atft_kedro.evaluation.baselines import fit_predict_baseline
from atft_kedro.loader.datasets import make_day_dataset
from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_training import (
    dates_between,
    fit_fold_scaler,
    fold_data,
    input_columns,
    trading_calendar,
    train_fold,
)
from atft_kedro.training.inference import predict_days
from atft_kedro.training.phases import phase_plan
from atft_kedro.training.trainer import LoopConfig

ROOT = Path(__file__).resolve().parents[1]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data"))
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
    parser.add_argument("--baselines", action="store_true", help="ridge / momentum / oracle too")
    args = parser.parse_args()

    conf = Path(args.conf)
    params: dict[str, Any] = {}
    for name in ("parameters.yml", "parameters_training.yml"):
        params |= yaml.safe_load((conf / name).read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        set_dotted(params, key, yaml.safe_load(value))
    training, seed, horizons = params["training"], params["seed"], params["horizons"]
    seq_len = params["seq_len"]
    training["progress_bar"] = False
    torch.set_num_threads(args.threads)

    data = Path(args.data)
    features = data / "04_feature" / "features.parquet"
    edges = data / "05_model_input" / "graph_edges.parquet"
    splits = json.loads((data / "04_feature" / "splits.json").read_text())
    calendar = trading_calendar(features)
    folds = [f for f in splits["folds"] if args.folds is None or f["fold"] in args.folds]
    plan = [p for spec in args.phases for p in phase_plan(training, spec)]
    loop = LoopConfig.from_params(training)
    ckpt_dir = args.checkpoints or tempfile.mkdtemp(prefix="phase_ablation_")
    store = CheckpointStore(ckpt_dir)
    print(
        f"overrides: {args.set or 'none'}; train days: {args.train_days or 'all'}; checkpoints: {ckpt_dir}"
    )

    rows = []
    started = time.perf_counter()
    for fold_split in folds:
        fold = int(fold_split["fold"])
        if args.train_days:
            train = dates_between(calendar, fold_split["train"])[-args.train_days :]
            fold_split = {**fold_split, "train": [str(train[0]), str(train[-1])]}
        scaler = fit_fold_scaler(features, fold_split, calendar, training["scaler"], seed)
        fd = fold_data(
            features, edges, fold_split, calendar, scaler, horizons=horizons, seq_len=seq_len,
            loader=training["loader"], seed=seed,
        )  # fmt: skip
        records = train_fold(
            fd, plan, loop, training["model"], store, seed=seed, horizons=horizons,
            threads=args.threads,
        )  # fmt: skip
        test_data = None
        if not args.no_test:
            cols = [*input_columns(pl.read_parquet_schema(features).keys())]
            test_data = make_day_dataset(
                "in_memory", features_path=features, columns=[*cols[0], *cols[1]],
                horizons=horizons, seq_len=seq_len, scaler=scaler, graph_edges_path=edges,
                require_target=True, seed=seed,
                dates=dates_between(calendar, fold_split["test"]), shuffle=False,
            )  # fmt: skip
        for rec in records.values():
            epochs = rec["epochs"]
            row = {
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
            feat = pl.read_parquet(features)
            oracle = pl.read_parquet(data / "01_raw" / "market" / "oracle_alpha.parquet")
            fc, mc = input_columns(feat.columns)
            for name in ("ridge", "momentum", "oracle"):
                preds = fit_predict_baseline(
                    name, feat, splits, fold, horizons, [*fc, *mc], seed,
                    oracle_alpha=oracle, n_threads=1,
                )  # fmt: skip
                print(json.dumps({"fold": fold, "baseline": name, "test_ric": mean_rank_ic(preds)}))
    total = time.perf_counter() - started
    print(f"\nwall time {total:.0f} s (threads={args.threads})")
    print("fold phase epochs best  val_RankIC@1d  test_RankIC@1d  s/epoch")
    for r in rows:
        print(
            f"{r['fold']:>4} {r['phase']:>5} {r['epochs']:>6} {r['best_epoch']:>4}  "
            f"{r['val_ric'] if r['val_ric'] is not None else float('nan'):>13.4f}  "
            f"{r.get('test_ric', float('nan')):>14.4f}  {r['s_per_epoch']:>7.1f}"
        )


if __name__ == "__main__":
    main()
