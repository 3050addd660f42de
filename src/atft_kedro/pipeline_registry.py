"""Project pipelines.

``kedro run`` runs ``__default__``: data_processing → graph → training → reporting, end to end.
``predict`` (latest-date signals) and ``hpo`` (hyper-parameter search) run only when named.

Each pipeline's nodes live in a namespace of the pipeline's name (``training.train_phases_node``),
so Kedro-Viz draws every pipeline as one collapsible group. Dataset and parameter names are not
prefixed: the catalog's names are the ones the pipelines share.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from atft_kedro.pipelines import data_processing, graph, hpo, predict, reporting, training


def _namespaced(name: str, pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with its nodes in namespace ``name`` and its datasets' names unchanged."""
    return Pipeline(pipeline, namespace=name, prefix_datasets_with_namespace=False)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines by name."""
    modules = {
        "data_processing": data_processing,
        "graph": graph,
        "training": training,
        "reporting": reporting,
        "predict": predict,
        "hpo": hpo,
    }
    pipelines = {name: _namespaced(name, m.create_pipeline()) for name, m in modules.items()}
    end_to_end = ("data_processing", "graph", "training", "reporting")
    pipelines["__default__"] = sum((pipelines[name] for name in end_to_end), Pipeline([]))
    return pipelines
