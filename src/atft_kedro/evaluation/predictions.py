"""The `predictions` table contract (07_model_output) and its checks.

Columns: ``Date, Code, model, fold, phase, pred_{h}d, q{q}_{h}d, target_{h}d, label``. One row per
(model, phase, Date, Code); baselines carry their own ``model`` name and a null ``phase``;
``target_{h}d`` is the return of ``label``, the target the predictor was fitted to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from atft_kedro.evaluation.selection import final_predictions

KEY_COLUMNS = ("Date", "Code", "model", "fold", "phase")
FINAL = "final"  # the final model's label suffix: `atft/final` (evaluation.selection)


def pred_col(h: int) -> str:
    return f"pred_{h}d"


def target_col(h: int) -> str:
    return f"target_{h}d"


def quantile_col(q: float, h: int) -> str:
    return f"q{q:g}_{h}d"


def require_columns(table: pl.DataFrame, columns: Iterable[str], name: str = "predictions") -> None:
    """Raise a one-line ValueError naming the table and the first missing column."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column {missing[0]!r} (missing {missing}; have {table.columns})"
        )


def require_unique_days(table: pl.DataFrame, name: str = "predictions") -> None:
    """Raise if a (Date, Code) pair occurs twice: metrics are per day over distinct stocks."""
    dup = table.filter(pl.struct("Date", "Code").is_duplicated())
    if dup.height:
        first = dup.row(0, named=True)
        raise ValueError(
            f"{name}: {dup.height} duplicate (Date, Code) rows "
            f"(first: Code {first['Code']} on {first['Date']}); evaluate one model/phase at a time"
        )


def model_label(model: str, phase: object) -> str:
    """``'atft_gat_fan/phase2'`` for a model phase, the bare model name for a baseline."""
    return model if phase is None else f"{model}/phase{phase}"


def split_by_model(predictions: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Split a stacked predictions table into one table per (model, phase) label."""
    require_columns(predictions, ("Date", "Code", "model", "phase"))
    out: dict[str, pl.DataFrame] = {}
    for (model, phase), part in predictions.group_by(["model", "phase"], maintain_order=True):
        out[model_label(model, phase)] = part.sort("Date", "Code")
    return out


def predictions_by_model(
    predictions: pl.DataFrame,
    baseline_predictions: pl.DataFrame,
    baselines_order: Sequence[str],
    ceilings: Sequence[str] = ("structural", "oracle", "oracle_next"),
    choice: Mapping[str, Any] | None = None,
) -> dict[str, pl.DataFrame]:
    """{label: predictions}: the model's phases ascending, the final model (each fold's phase
    of ``choice``, a ``selection.validation_choice``; left out when None), then baselines in the
    configured order and the ceilings, each restricted to the folds the model was evaluated on."""
    model = split_by_model(predictions.sort("phase", "Date", "Code"))
    model = dict(sorted(model.items(), key=lambda kv: kv[1]["phase"][0]))
    if choice is not None and choice.get("folds"):
        model[final_label(predictions)] = final_predictions(predictions, choice)
    folds = predictions["fold"].unique().to_list()
    base = split_by_model(baseline_predictions.filter(pl.col("fold").is_in(folds)))
    order = [b for b in [*baselines_order, *ceilings] if b in base]
    return model | {b: base[b] for b in order}


def final_label(predictions: pl.DataFrame) -> str:
    """Label of the final model (each fold's phase chosen on validation days), ``atft/final``."""
    return f"{predictions['model'][0]}/{FINAL}"
