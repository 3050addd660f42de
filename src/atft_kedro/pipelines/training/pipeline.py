"""training pipeline: fit the per-fold scalers, then train the selected phases on each fold."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.inputs import keywords
from atft_kedro.pipelines.training.nodes import fit_scalers_node, train_phases_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                fit_scalers_node,
                inputs=[
                    "model_input",
                    "splits",
                    "params:training",
                    "params:label",
                    "params:horizons",
                    "params:seed",
                ],
                outputs="scalers",
                name="fit_scalers_node",
            ),
            Node(
                train_phases_node,
                inputs=keywords(
                    "model_input",
                    "graph_edges",
                    "splits",
                    "scalers",
                    "checkpoints",
                    "params:training",
                    "params:label",
                    "params:phase",
                    "params:resume_checkpoint",
                    "params:seed",
                    "params:horizons",
                    "params:seq_len",
                ),
                outputs="training_metrics",
                name="train_phases_node",
            ),
        ]
    )
