import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from atft_kedro.datasets import DayMajorParquetDataset
from atft_kedro.features import registry
from atft_kedro.pipelines.graph import create_pipeline

PARAMETERS = Path(__file__).parents[3] / "conf" / "base" / "parameters_graph.yml"


def _panel(days: int = 130, sectors: int = 4, per_sector: int = 10) -> pl.DataFrame:
    """Sector factors, plus cluster factors that cut across sectors (stock j in cluster j % 5:
    8 members each)."""
    rng = np.random.default_rng(3)
    sector = np.repeat(np.arange(sectors), per_sector)
    cluster = np.arange(sector.size) % 5
    returns = (
        rng.normal(0, 0.01, (days, sectors))[:, sector]
        + rng.normal(0, 0.01, (days, 5))[:, cluster]
        + rng.normal(0, 0.01, (days, sector.size))
    )
    close = 100 * np.exp(np.cumsum(returns, axis=0))
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    return pl.DataFrame(
        {
            "Date": pl.Series([d for d in dates for _ in sector], dtype=pl.Date),
            "Code": [f"{1300 + j}0" for j in range(sector.size)] * days,
            "close": close.ravel(),
            "market": ["0111"] * close.size,
            "sector33": [f"{50 + s:04d}" for s in sector] * days,
            "sector17": ["01"] * close.size,
        }
    )


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so an intermediate output can be inspected."""

    def _release(self) -> None:
        pass


def _features(panel: pl.DataFrame) -> pl.DataFrame:
    """A features table (the features stage's columns) for the panel's rows; values are noise."""
    rng = np.random.default_rng(0)
    names = registry.feature_names("features")
    masks = registry.mask_names("features")
    return panel.select("Date", "Code", "market", "sector33", "sector17").with_columns(
        *[pl.lit(rng.normal(size=panel.height), dtype=pl.Float32).alias(c) for c in names],
        *[pl.lit(1, dtype=pl.Int8).alias(c) for c in masks],
        pl.lit(rng.normal(size=panel.height), dtype=pl.Float32).alias("target_1d"),
    )


def _run(pipeline, params, tmp_path=None):
    panel = _panel()
    entries = {
        "panel": MemoryDataset(panel),
        "params:graph": MemoryDataset(params),
        "peer_features": KeptDataset(),
    }
    if tmp_path is not None:
        features = DayMajorParquetDataset(str(tmp_path / "features.parquet"))
        features.save(_features(panel))
        entries |= {
            "features": MemoryDataset(features.load(), copy_mode="assign"),
            "model_input": DayMajorParquetDataset(str(tmp_path / "model_input.parquet")),
        }
    catalog = DataCatalog(entries)
    outputs = SequentialRunner().run(pipeline, catalog)
    loaded = {name: dataset.load() for name, dataset in outputs.items()}
    if any(n.name == "peer_features_node" for n in pipeline.nodes):
        loaded["peer_features"] = catalog.load("peer_features")
    if tmp_path is not None:
        loaded["model_input"] = catalog.load("model_input").read()
    return loaded


def test_graph_pipeline_runs_with_the_project_parameters():
    with open(PARAMETERS) as f:
        params = yaml.safe_load(f)["graph"] | {"progress": False}
    pipeline = create_pipeline()
    graphs = _run(pipeline.only_nodes("build_graphs_node"), params)
    edges, nodes = graphs["graph_edges"], graphs["graph_nodes"]
    assert edges.columns[:6] == [
        "Date",
        "src_code",
        "dst_code",
        "corr",
        "same_market",
        "same_sector33",
    ]
    assert nodes.columns[:3] == ["Date", "Code", "node_idx"]
    assert nodes["Date"].min() == dt.date(2024, 1, 1) + dt.timedelta(days=params["min_obs"])
    assert edges.height > 0
    # sector-residual correlations: the edges join cluster mates (7 of the 39 others) ≥ 2x as
    # often as random pairs would
    codes = sorted(nodes["Code"].unique())
    src = np.array([codes.index(c) for c in edges["src_code"]])
    dst = np.array([codes.index(c) for c in edges["dst_code"]])
    assert np.mean(src % 5 == dst % 5) >= 2 * 7 / 39

    stats = _run(pipeline.only_nodes("build_graphs_node", "graph_stats_node"), params)
    stats = stats["graph_stats"]
    assert stats["Date"].to_list() == nodes["Date"].unique().sort().to_list()
    assert (stats["edges"] > 0).all()


def test_peer_features_and_model_input_follow_the_registry(tmp_path):
    with open(PARAMETERS) as f:
        params = yaml.safe_load(f)["graph"] | {"progress": False}
    out = _run(create_pipeline(), params, tmp_path)
    out["graph_nodes"] = _run(create_pipeline().only_nodes("build_graphs_node"), params)[
        "graph_nodes"
    ]
    peers, table = out["peer_features"], out["model_input"]
    assert peers.columns == ["Date", "Code", *registry.feature_names("graph")]
    panel = _panel()
    assert peers.select("Date", "Code").equals(panel.select("Date", "Code").sort("Date", "Code"))
    keys = ["Date", "Code", "market", "sector33", "sector17"]
    assert table.columns == [*keys, *registry.model_input_names(), "target_1d"]
    assert table.height == panel.height
    # a day with a graph has peer features; the first days (no graph yet) have mask 0
    graph_days = out["graph_nodes"]["Date"].unique()
    with_graph = table.filter(pl.col("Date").is_in(graph_days.implode()))
    # peer_gap_z_20d needs 10 earlier days with a graph: valid from the 11th graph day on
    settled = graph_days.sort()[10]
    assert (with_graph.filter(pl.col("Date") >= settled)["is_peer_valid"] == 1).all()
    assert (table.filter(pl.col("Date") < graph_days.min())["is_peer_valid"] == 0).all()
    assert with_graph.filter(pl.col("is_peer_valid") == 1)["peer_count"].min() >= 1


def test_catalog_declares_the_graph_tables_as_parquet(tmp_path):
    with open(PARAMETERS.with_name("catalog_graph.yml")) as f:
        config = yaml.safe_load(f)
    assert set(config) == {
        "graph_edges",
        "graph_nodes",
        "graph_stats",
        "peer_features",
        "model_input",
    }
    assert config["model_input"]["type"].endswith("DayMajorParquetDataset")
    for entry in config.values():
        assert entry["filepath"].startswith("data/05_model_input/")
        entry["filepath"] = str(tmp_path / Path(entry["filepath"]).name)
    catalog = DataCatalog.from_config(config)
    table = _panel(days=2)
    catalog.save("graph_nodes", table)
    assert catalog.load("graph_nodes").equals(table)
