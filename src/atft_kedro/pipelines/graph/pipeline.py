"""graph pipeline: panel → daily kNN correlation graphs → per-date statistics."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.graph.nodes import build_graphs_node, graph_stats_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_graphs_node,
                inputs=["panel", "params:graph"],
                outputs=["graph_edges", "graph_nodes"],
                name="build_graphs_node",
            ),
            Node(
                graph_stats_node,
                inputs=["graph_edges", "graph_nodes"],
                outputs="graph_stats",
                name="graph_stats_node",
            ),
        ],
        tags=["graph"],
    )
