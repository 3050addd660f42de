"""data_processing pipeline: ingest → panel → features → splits."""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.data_processing.nodes import (
    build_features_node,
    build_panel_node,
    ingest_market_node,
    make_splits_node,
)
from atft_kedro.pipelines.inputs import keywords


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                ingest_market_node,
                inputs=["params:market", "params:seed"],
                outputs=[
                    "raw_daily_quotes",
                    "raw_listed_info",
                    "raw_topix",
                    "raw_trades_spec",
                    "raw_statements",
                    "oracle_alpha",
                    "alpha_components",
                    "latent_clusters",
                ],
                name="ingest_market_node",
            ),
            Node(
                build_panel_node,
                inputs=["raw_daily_quotes", "raw_listed_info"],
                outputs="panel",
                name="build_panel_node",
            ),
            Node(
                build_features_node,
                inputs=keywords(
                    "panel",
                    "raw_topix",
                    "raw_trades_spec",
                    "raw_statements",
                    "params:horizons",
                    "params:features",
                    "params:universe",
                ),
                outputs="features",
                name="build_features_node",
            ),
            Node(
                make_splits_node,
                inputs=["panel", "params:splits", "params:seq_len", "params:horizons"],
                outputs="splits",
                name="make_splits_node",
            ),
        ],
        tags=["data_processing"],
    )
