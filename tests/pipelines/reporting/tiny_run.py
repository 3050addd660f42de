"""Everything the reporting and predict pipelines read, built once from the `tiny` synthetic market.

Checkpoints are randomly initialised (seeded) tiny models saved in the training checkpoint format
for phases 0 (no FAN/SAN/GAT), 1 (+ FAN/SAN) and 2 (+ GAT) of both folds: the pipelines' wiring
and the no-look-ahead property do not depend on the model having learned anything.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from kedro.io import DataCatalog, MemoryDataset

from atft_kedro.datasets import DayMajorParquet, DayMajorParquetDataset
from atft_kedro.datasets.checkpoint import CheckpointDirectoryDataset
from atft_kedro.features.build import build_features
from atft_kedro.features.model_input import model_input_table
from atft_kedro.graph import GraphConfig, build_graphs, graph_stats
from atft_kedro.graph.peers import graph_peer_table, peer_returns
from atft_kedro.loader.splits import purged_walk_forward
from atft_kedro.market.panel import build_panel
from atft_kedro.market.synthetic import generate_market
from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore, plain
from atft_kedro.training.config import ScalerConfig
from atft_kedro.training.fold_data import fit_fold_scaler, input_columns, trading_calendar

HORIZONS = [1, 5]
LABEL = "next_close"
MODEL_INPUTS = ["momentum", "earnings", "flows", "market"]  # training.inputs
SEQ_LEN = 10
PHASES = {0: (False, False, False), 1: (True, True, False), 2: (True, True, True)}
REPORTING = {
    "horizons": [1, 5],
    "cost_bps": 10.0,
    "quantile": 0.2,
    "top_n": 10,
    "min_stocks": 5,
    "n_boot": 100,
    "mean_block": 5.0,
    "baselines": ["ridge", "peer_ridge", "inputs_ridge", "hgb", "momentum", "reversal"],
    "max_train_rows": 3000,
    "threads": 1,
    "book": {
        "half_lives": [0, 2, 5],
        "rebalance_every": [1, 2],
        "choose_by": "net_sharpe",
        "min_names_per_side": 4,
    },  # the tiny market's 40 codes: 20 stocks at quantile 0.2
}
GRAPH = {
    "lookback": 30,
    "min_obs": 20,
    "k": 5,
    "candidates": 8,
    "threshold": 0.2,
    "beta_window": 60,
    "progress": False,
}
MODEL = {
    "hidden": 8,
    "attn_heads": 2,
    "dropout": 0.1,
    "fan": {"windows": [2, 5], "mlp_hidden": 4},
    "san": {"n_slices": 2},
    "gat": {"heads": 2, "n_layers": 1},
}


@dataclass(frozen=True)
class TinyRun:
    root: Path
    features: DayMajorParquet  # the model_input table (features + peer features)
    panel: pl.DataFrame
    graph_edges: pl.DataFrame
    peer_features: pl.DataFrame
    graph_stats: pl.DataFrame
    oracle_alpha: pl.DataFrame
    alpha_components: pl.DataFrame
    latent_clusters: pl.DataFrame
    splits: dict
    scalers: dict
    checkpoints: Path
    training_metrics: dict


def save_checkpoints(store: CheckpointStore, n_features: int, folds: list[int]) -> None:
    """Seeded random tiny models in the training checkpoint format, one per (fold, phase)."""
    for fold in folds:
        for phase, (fan, san, gat) in PHASES.items():
            torch.manual_seed(100 * fold + phase)
            cfg = ModelConfig.from_dict(
                {
                    **MODEL,
                    "n_features": n_features,
                    "horizons": HORIZONS,
                    "use_fan": fan,
                    "use_san": san,
                    "use_gat": gat,
                }
            )
            model = ATFTGATFAN(cfg)
            state = {
                "model_state": model.state_dict(),
                "fold": fold,
                "phase": phase,
                "model_config": plain(dataclasses.asdict(model.cfg)),
                "params": {"run": {"training": {"loader": {"target": LABEL}}}},
            }
            store.save(fold, phase, "best", state)


#: the phase with the best validation RankIC in each fold's training records (the final model)
CHOSEN = {0: 2, 1: 1}


def training_record(fold: int, phase: int) -> dict:
    epochs = [
        {"epoch": e, "train_total": 1.0 / e, "val_loss": 1.1 / e, "val_rank_ic_1d": 0.01 * e}
        for e in (1, 2)
    ]
    best = 0.03 if phase == CHOSEN[fold] else 0.01 * phase / 4
    return {
        "fold": fold,
        "phase": phase,
        "early_stop_horizon": 1,
        "epochs": epochs,
        "best_val_rank_ic": best,
    }


def build(root: Path) -> TinyRun:
    market = generate_market("tiny", seed=0)
    panel = build_panel(market["daily_quotes"], market["listed_info"])
    table = build_features(
        panel,
        market["topix"],
        market["trades_spec"],
        market["statements"],
        horizons=tuple(HORIZONS),
    )
    graphs = build_graphs(panel, GraphConfig.from_params(GRAPH))
    config = GraphConfig.from_params(GRAPH)
    peers = graph_peer_table(
        peer_returns(panel, config.residualize, config.beta_window), graphs.edges
    )
    dataset = DayMajorParquetDataset(str(root / "model_input.parquet"))
    dataset.save(model_input_table(table, peers))
    features = dataset.load()
    dates = table["Date"].unique().sort().to_list()
    splits = purged_walk_forward(
        dates,
        n_splits=2,
        seq_len=SEQ_LEN,
        max_horizon=max(HORIZONS),
        embargo_days=2,
        val_days=20,
        test_days=20,
    )
    calendar = trading_calendar(features.path)
    scalers = {
        f"fold{f['fold']}": fit_fold_scaler(
            features.path, f, calendar, ScalerConfig(), seed=0
        ).to_dict()
        for f in splits["folds"]
    }
    names, masks = input_columns(features.columns)
    folds = [f["fold"] for f in splits["folds"]]
    save_checkpoints(CheckpointStore(root / "checkpoints"), len(names) + len(masks), folds)
    return TinyRun(
        root=root,
        features=features,
        panel=panel,
        graph_edges=graphs.edges,
        peer_features=peers,
        graph_stats=graph_stats(graphs.edges, graphs.nodes),
        oracle_alpha=market["oracle_alpha"],
        alpha_components=market["alpha_components"],
        latent_clusters=market["latent_clusters"],
        splits=splits,
        scalers=scalers,
        checkpoints=root / "checkpoints",
        training_metrics={
            f"fold{f}_phase{p}": training_record(f, p) for f in folds for p in PHASES
        },
    )


@functools.cache
def tiny_run() -> TinyRun:
    """Built once per test session (shared by the reporting and predict tests)."""
    root = Path(tempfile.mkdtemp(prefix="atft_tiny_run_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build(root)


def catalog(run: TinyRun, **overrides) -> DataCatalog:
    """In-memory catalog of the pipelines' inputs (``overrides`` replace entries by name)."""
    entries = {
        "model_input": MemoryDataset(run.features, copy_mode="assign"),
        "panel": MemoryDataset(run.panel),
        "graph_edges": MemoryDataset(run.graph_edges),
        "peer_features": MemoryDataset(run.peer_features),
        "graph_stats": MemoryDataset(run.graph_stats),
        "oracle_alpha": MemoryDataset(run.oracle_alpha),
        "alpha_components": MemoryDataset(run.alpha_components),
        "latent_clusters": MemoryDataset(run.latent_clusters),
        "splits": MemoryDataset(run.splits),
        "scalers": MemoryDataset(run.scalers),
        "checkpoints": CheckpointDirectoryDataset(str(run.checkpoints)),
        "training_metrics": MemoryDataset(run.training_metrics),
        "params:reporting": MemoryDataset(REPORTING),
        "params:graph": MemoryDataset(GRAPH),
        "params:predict": MemoryDataset({"horizon": 1, "fold": None, "phase": None, "threads": 1}),
        "params:horizons": MemoryDataset(HORIZONS),
        "params:label": MemoryDataset(LABEL),
        "params:training.inputs": MemoryDataset(MODEL_INPUTS),
        "params:seq_len": MemoryDataset(SEQ_LEN),
        "params:seed": MemoryDataset(0),
    }
    return DataCatalog(entries | overrides)
