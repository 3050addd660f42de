"""predict pipeline: the latest date's trading signals from the best trained model."""

from atft_kedro.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
