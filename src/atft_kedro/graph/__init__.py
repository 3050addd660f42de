"""Daily point-in-time kNN correlation graphs of stocks (docs/design.md, Graph)."""

from atft_kedro.graph.build import GraphConfig, GraphTables, build_graphs
from atft_kedro.graph.correlation import rolling_correlation, window_weights
from atft_kedro.graph.knn import DirectedEdges, knn_edges
from atft_kedro.graph.nx_views import day_graph
from atft_kedro.graph.returns import ReturnPanel, daily_log_returns
from atft_kedro.graph.stats import graph_stats

__all__ = [
    "DirectedEdges",
    "GraphConfig",
    "GraphTables",
    "ReturnPanel",
    "build_graphs",
    "daily_log_returns",
    "day_graph",
    "graph_stats",
    "knn_edges",
    "rolling_correlation",
    "window_weights",
]
