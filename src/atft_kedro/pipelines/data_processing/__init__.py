"""data_processing: raw J-Quants tables → point-in-time panel → features, targets and splits."""

from atft_kedro.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
