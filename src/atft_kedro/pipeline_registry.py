"""Project pipelines.

``kedro run`` runs ``__default__``: data_processing → graph → training → reporting, end to end.
``predict`` (latest-date signals) and ``hpo`` (hyper-parameter search) run only when named.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from atft_kedro.pipelines import data_processing, graph, hpo, predict, reporting, training


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines by name."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "graph": graph.create_pipeline(),
        "training": training.create_pipeline(),
        "reporting": reporting.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines["predict"] = predict.create_pipeline()
    pipelines["hpo"] = hpo.create_pipeline()
    return pipelines
