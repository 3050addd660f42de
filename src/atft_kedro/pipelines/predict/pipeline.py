"""predict pipeline: score every stock of the latest date (run it after a daily data update)."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.inputs import keywords
from atft_kedro.pipelines.predict.nodes import predict_signals_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_signals_node,
                inputs={"features": "model_input"}
                | keywords(
                    "graph_edges",
                    "scalers",
                    "checkpoints",
                    "training_metrics",
                    "params:predict",
                    "params:seq_len",
                ),
                outputs="signals",
                name="predict_signals_node",
            ),
        ]
    )
