"""graph: daily point-in-time kNN correlation graphs of the panel, and their statistics."""

from atft_kedro.pipelines.graph.pipeline import create_pipeline

__all__ = ["create_pipeline"]
