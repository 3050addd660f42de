"""Node functions of the graph pipeline: catalog data in, ``atft_kedro.graph`` calls, tables out."""

from __future__ import annotations

from typing import Any

import polars as pl

from atft_kedro.graph import GraphConfig, build_graphs, graph_stats


def build_graphs_node(
    panel: pl.DataFrame, params: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """panel + params:graph → (graph_edges, graph_nodes), one graph per trading date."""
    graphs = build_graphs(panel, GraphConfig.from_params(params))
    return graphs.edges, graphs.nodes


def graph_stats_node(graph_edges: pl.DataFrame, graph_nodes: pl.DataFrame) -> pl.DataFrame:
    """graph_edges + graph_nodes → graph_stats, one row per date with a graph."""
    return graph_stats(graph_edges, graph_nodes)
