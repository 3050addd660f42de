"""predict pipeline: score every stock of the latest date (run it after a daily data update)."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.predict.nodes import predict_signals_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_signals_node,
                inputs=[
                    "model_input",
                    "graph_edges",
                    "scalers",
                    "checkpoints",
                    "params:predict",
                    "params:seq_len",
                ],
                outputs="signals",
                name="predict_signals_node",
            ),  # fmt: skip
        ]
    )
