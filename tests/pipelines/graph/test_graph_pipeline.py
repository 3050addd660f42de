import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from atft_kedro.pipelines.graph import create_pipeline

PARAMETERS = Path(__file__).parents[3] / "conf" / "base" / "parameters_graph.yml"


def _panel(days: int = 130, sectors: int = 4, per_sector: int = 5) -> pl.DataFrame:
    """Sector factors, plus cluster factors that cut across sectors (stock j in cluster j % 5)."""
    rng = np.random.default_rng(3)
    sector = np.repeat(np.arange(sectors), per_sector)
    cluster = np.arange(sector.size) % per_sector
    returns = (
        rng.normal(0, 0.01, (days, sectors))[:, sector]
        + rng.normal(0, 0.01, (days, per_sector))[:, cluster]
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


def _run(pipeline, params):
    catalog = DataCatalog({"panel": MemoryDataset(_panel()), "params:graph": MemoryDataset(params)})
    outputs = SequentialRunner().run(pipeline, catalog)
    return {name: dataset.load() for name, dataset in outputs.items()}


def test_graph_pipeline_runs_with_the_project_parameters():
    with open(PARAMETERS) as f:
        params = yaml.safe_load(f)["graph"] | {"progress": False}
    pipeline = create_pipeline()
    graphs = _run(pipeline.only_nodes("build_graphs_node"), params)
    edges, nodes = graphs["graph_edges"], graphs["graph_nodes"]
    assert edges.columns[:6] == [
        "Date", "src_code", "dst_code", "corr", "same_market", "same_sector33",
    ]  # fmt: skip
    assert nodes.columns[:3] == ["Date", "Code", "node_idx"]
    assert nodes["Date"].min() == dt.date(2024, 1, 1) + dt.timedelta(days=params["min_obs"])
    assert edges.height > 0
    # sector-residual correlations: the edges join cluster mates (4 of the 19 others) ≥ 2x as
    # often as random pairs would
    codes = sorted(nodes["Code"].unique())
    src = np.array([codes.index(c) for c in edges["src_code"]])
    dst = np.array([codes.index(c) for c in edges["dst_code"]])
    assert np.mean(src % 5 == dst % 5) >= 2 * 4 / 19

    stats = _run(pipeline, params)["graph_stats"]
    assert stats["Date"].to_list() == nodes["Date"].unique().sort().to_list()
    assert (stats["edges"] > 0).all()


def test_catalog_declares_the_graph_tables_as_parquet(tmp_path):
    with open(PARAMETERS.with_name("catalog_graph.yml")) as f:
        config = yaml.safe_load(f)
    assert set(config) == {"graph_edges", "graph_nodes", "graph_stats"}
    for entry in config.values():
        assert entry["filepath"].startswith("data/05_model_input/")
        entry["filepath"] = str(tmp_path / Path(entry["filepath"]).name)
    catalog = DataCatalog.from_config(config)
    table = _panel(days=2)
    catalog.save("graph_nodes", table)
    assert catalog.load("graph_nodes").equals(table)
