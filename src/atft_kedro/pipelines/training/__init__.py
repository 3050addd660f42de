"""training pipeline: per-fold scalers, then phases 0–4 with checkpoints and metrics."""

from atft_kedro.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
