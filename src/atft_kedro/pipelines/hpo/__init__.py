"""hpo pipeline: an Optuna study over the training configuration, shared by any number of workers."""

from atft_kedro.pipelines.hpo.pipeline import create_pipeline

__all__ = ["create_pipeline"]
