"""The model-input table: the features table joined with the graph stage's peer features.

One row per row of ``features`` (Date, Code), columns in contract order: identifiers, every
stage's features, every stage's masks (``registry.model_input_names()``), then ``universe`` and the
targets. A (Date, Code)
without a peer row (no graph that day, or too little history) gets NaN peer features and
``is_peer_valid`` 0, like any other family with missing inputs.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features import registry

KEYS = ("Date", "Code", "market", "sector33", "sector17")


def model_input_table(features: pl.DataFrame, peers: pl.DataFrame) -> pl.DataFrame:
    """features (features stage, docs/contracts.md) + peers (Date, Code, peer family) →
    model_input, sorted by Date, Code."""
    table_inputs = registry.feature_names("features") + registry.mask_names("features")
    for name, frame, needed in (
        ("features", features, [*KEYS, *table_inputs]),
        ("peer_features", peers, ["Date", "Code", *registry.feature_names("graph")]),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{name}: missing column(s) {missing[:5]}{' …' if len(missing) > 5 else ''}: "
                "rebuild it with the current code (`kedro run --pipeline data_processing` or "
                "`--pipeline graph`)"
            )
    labels = [c for c in features.columns if c == "universe" or c.startswith("target_")]
    return (
        with_peer_features(features, peers)
        .select(*KEYS, *registry.model_input_names(), *labels)
        .sort("Date", "Code")
    )


def with_peer_features(table: pl.DataFrame, peers: pl.DataFrame) -> pl.DataFrame:
    """``table`` (Date, Code and any other columns) with the peer family and its mask from
    ``peers``: columns ``table`` has keep their place, the others are appended."""
    graph_features = registry.feature_names("graph")
    graph_masks = registry.mask_names("graph")
    missing = [c for c in ["Date", "Code", *graph_features] if c not in peers.columns]
    if missing:
        raise ValueError(f"peer table: missing column(s) {missing}")
    kept = table.drop([c for c in graph_features + graph_masks if c in table.columns])
    joined = kept.join(
        peers.select("Date", "Code", *graph_features), on=["Date", "Code"], how="left"
    ).with_columns(pl.col(graph_features).cast(pl.Float32).fill_null(float("nan")))
    masks = [
        pl.all_horizontal(pl.col(registry.family_features(f)).is_not_nan())
        .cast(pl.Int8)
        .alias(f"is_{f}_valid")
        for f in registry.families("graph")
    ]
    added = [c for c in graph_features + graph_masks if c not in table.columns]
    return joined.with_columns(masks).select(*table.columns, *added)
