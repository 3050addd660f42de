"""Feature engineering: the registry of model inputs, targets, and cross-sectional normalisation."""

from atft_kedro.features.build import build_features, panel_features
from atft_kedro.features.day_major import check_day_major_parquet, write_day_major_parquet
from atft_kedro.features.registry import (
    FEATURES,
    FeatureSpec,
    feature_names,
    mask_names,
    model_input_names,
)

__all__ = [
    "FEATURES",
    "FeatureSpec",
    "build_features",
    "check_day_major_parquet",
    "feature_names",
    "mask_names",
    "model_input_names",
    "panel_features",
    "write_day_major_parquet",
]
