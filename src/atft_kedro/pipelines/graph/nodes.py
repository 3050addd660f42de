"""Node functions of the graph pipeline: catalog data in, ``atft_kedro.graph`` calls, tables out."""

from __future__ import annotations

from typing import Any

import polars as pl

from atft_kedro.datasets import DayMajorParquet
from atft_kedro.features.model_input import model_input_table
from atft_kedro.graph import GraphConfig, build_graphs, graph_stats
from atft_kedro.graph.peers import graph_peer_table, peer_returns


def build_graphs_node(
    panel: pl.DataFrame, params: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """panel + params:graph → (graph_edges, graph_nodes), one graph per trading date."""
    graphs = build_graphs(panel, GraphConfig.from_params(params))
    return graphs.edges, graphs.nodes


def graph_stats_node(graph_edges: pl.DataFrame, graph_nodes: pl.DataFrame) -> pl.DataFrame:
    """graph_edges + graph_nodes → graph_stats, one row per date with a graph."""
    return graph_stats(graph_edges, graph_nodes)


def peer_features_node(
    panel: pl.DataFrame, graph_edges: pl.DataFrame, params: dict[str, Any]
) -> pl.DataFrame:
    """panel + graph_edges → peer_features (Date, Code, the registry's peer family)."""
    config = GraphConfig.from_params(params)
    returns = peer_returns(panel, config.residualize, config.beta_window)
    return graph_peer_table(returns, graph_edges)


def model_input_node(features: DayMajorParquet, peer_features: pl.DataFrame) -> pl.DataFrame:
    """features + peer_features → model_input: every model input of the registry, day-major."""
    return model_input_table(features.read(), peer_features)
