"""Which trained phase is the final model: chosen on validation days, fold by fold.

Later phases do not always help (each is a different bet on the same few years), so the final model
is not "the last phase" but, in each walk-forward fold, the phase whose `best` checkpoint had the
highest mean validation RankIC at the early-stopping horizon (``best_val_rank_ic`` of the training
metrics). A fold's validation days precede its test days, so the choice uses nothing from the test
period; choosing one phase for every fold from all folds' validation days would let a later fold's
validation period (after an earlier fold's test period) pick the earlier fold's model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

RULE = "per fold, the phase with the highest mean validation RankIC (best checkpoint)"


def _records(training_metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-(fold, phase) records; a PartitionedDataset gives loaders instead of dicts."""
    return [r() if callable(r) else r for r in training_metrics.values()]


def validation_choice(training_metrics: Mapping[str, Any], folds: list[int]) -> dict[str, Any]:
    """``{"rule", "folds": {fold: {"phase": chosen, "val_rank_ic": {phase: value}}}}`` for the
    ``folds`` with at least one trained phase; a phase without a finite value is never chosen, and
    a tie goes to the earlier phase (the simpler model)."""
    per_fold: dict[int, dict[int, float]] = {}
    for record in _records(training_metrics):
        fold, phase = int(record["fold"]), int(record["phase"])
        value = record.get("best_val_rank_ic")
        if fold in folds and isinstance(value, int | float) and math.isfinite(value):
            per_fold.setdefault(fold, {})[phase] = float(value)
    choice = {}
    for fold, values in sorted(per_fold.items()):
        best = max(sorted(values), key=lambda p: values[p])  # first maximum: earliest phase
        choice[str(fold)] = {
            "phase": best,
            "val_rank_ic": {str(p): values[p] for p in sorted(values)},
        }
    return {"rule": RULE, "folds": choice}


def chosen_phases(choice: Mapping[str, Any]) -> dict[int, int]:
    """``{fold: phase}`` of a ``validation_choice`` document."""
    return {int(f): int(block["phase"]) for f, block in choice.get("folds", {}).items()}


def final_predictions(predictions: pl.DataFrame, choice: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of ``predictions`` of each fold's chosen phase (the final model's test days)."""
    phases = chosen_phases(choice)
    chosen = pl.DataFrame(
        {"fold": list(phases), "phase": list(phases.values())},
        schema={"fold": predictions.schema["fold"], "phase": predictions.schema["phase"]},
    )
    return predictions.join(chosen, on=["fold", "phase"], how="semi").sort("Date", "Code")
