"""Feature engineering: the registry of model inputs, targets, and cross-sectional normalisation.

The names below are imported on first use, so that ``atft_kedro.features.registry`` (and the
training code that reads it) imports without polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_features": "build",
    "panel_features": "build",
    "check_day_major_parquet": "day_major",
    "write_day_major_parquet": "day_major",
    "FEATURES": "registry",
    "FeatureSpec": "registry",
    "feature_names": "registry",
    "mask_names": "registry",
    "model_input_names": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
