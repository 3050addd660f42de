"""Kedro project settings: configuration from conf/, runtime parameters via ``--params``."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (e.g. `--env tiny`) overrides single nested keys instead of whole blocks.
    "merge_strategy": {"parameters": "soft"},
}

# kedro-mlflow (a plugin, registered by its entry point) opens one MLflow run per `kedro run`;
# these hooks add tags, curves, the final evaluation and the outputs to it (conf/base/mlflow.yml).
from atft_kedro.pipelines.tracking import TrackingHooks  # noqa: E402

HOOKS = (TrackingHooks(),)
