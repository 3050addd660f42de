"""reporting pipeline: test-fold predictions, baselines, evaluation with CI95, figures, HTML report."""

from atft_kedro.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
