"""reporting pipeline: predict the folds' test (and validation) days, fit the baselines, evaluate,
draw, write the report."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.inputs import keywords
from atft_kedro.pipelines.reporting.nodes import (
    baseline_predictions_node,
    cluster_peers_node,
    evaluate_node,
    figures_node,
    graph_quality_node,
    predict_folds_node,
    report_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                cluster_peers_node,
                inputs=["panel", "latent_clusters", "params:graph"],
                outputs="cluster_peer_features",
                name="cluster_peers_node",
            ),
            Node(
                graph_quality_node,
                inputs=["graph_edges", "peer_features", "cluster_peer_features", "latent_clusters"],
                outputs="graph_quality",
                name="graph_quality_node",
            ),
            Node(
                predict_folds_node,
                inputs=keywords(
                    "model_input",
                    "graph_edges",
                    "splits",
                    "scalers",
                    "checkpoints",
                    "training_metrics",
                    "params:reporting",
                    "params:horizons",
                    "params:seq_len",
                    "params:seed",
                ),
                outputs=["predictions", "validation_predictions", "interpretation"],
                name="predict_folds_node",
            ),
            Node(
                baseline_predictions_node,
                inputs=keywords(
                    "model_input",
                    "splits",
                    "oracle_alpha",
                    "cluster_peer_features",
                    "params:reporting",
                    "params:label",
                    "params:seed",
                )
                | {"model_inputs": "params:training.inputs"},
                outputs=["baseline_predictions", "baseline_validation_predictions"],
                name="baseline_predictions_node",
            ),
            Node(
                evaluate_node,
                inputs=keywords(
                    "predictions",
                    "baseline_predictions",
                    "validation_predictions",
                    "baseline_validation_predictions",
                    "model_input",
                    "panel",
                    "training_metrics",
                    "alpha_components",
                    "params:reporting",
                    "params:label",
                    "params:seed",
                ),
                outputs="evaluation",
                name="evaluate_node",
            ),
            Node(
                figures_node,
                inputs=keywords(
                    "predictions",
                    "baseline_predictions",
                    "evaluation",
                    "interpretation",
                    "graph_stats",
                    "graph_quality",
                    "training_metrics",
                    "params:reporting",
                    "params:seed",
                ),
                outputs="figures@matplotlib",
                name="figures_node",
            ),
            Node(
                report_node,
                inputs=[
                    "evaluation",
                    "figures@png",
                    "model_input",
                    "graph_quality",
                    "splits",
                    "params:reporting",
                ],
                outputs="report",
                name="report_node",
            ),
        ]
    )
