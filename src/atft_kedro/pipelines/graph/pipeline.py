"""graph pipeline: panel → daily kNN correlation graphs → statistics, peer features, model input."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.graph.nodes import (
    build_graphs_node,
    graph_stats_node,
    model_input_node,
    peer_features_node,
)


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
            Node(
                peer_features_node,
                inputs=["panel", "graph_edges", "params:graph"],
                outputs="peer_features",
                name="peer_features_node",
            ),
            Node(
                model_input_node,
                inputs=["features", "peer_features"],
                outputs="model_input",
                name="model_input_node",
            ),
        ],
        tags=["graph"],
    )
