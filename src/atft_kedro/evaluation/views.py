"""The same predictions scored under four views of what a strategy could have earned.

* ``next_close``: close t+1 → close t+1+h, next-session entry, the JPX competition convention
  (``target_next_{h}d``) and the default label (``features.targets``).
* ``close``: close t → close t+h, the signal's own close (``target_{h}d``): same close, not
  tradable. Bid-ask bounce and stale closes inflate it: a prediction that "knows" today's close
  sat on the bid earns tomorrow's rebound, which no one trading after the signal gets.
* ``next_open``: open t+1 → open t+1+h (``target_open_{h}d``).
* ``investable``: the label's return, on the rows of the investable universe only (``universe`` =
  1, ``features.universe``).

A view replaces each predictions table's ``target_{h}d`` columns with the view's target for the same
(Date, Code), so every metric and the long-short backtest (whose daily return is the view's 1-day
target) run unchanged on it. The label's own view is the headline; the others are diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import polars as pl

from atft_kedro.evaluation.predictions import target_col
from atft_kedro.features.labels import DEFAULT_LABEL, target_name

VIEWS = ("next_close", "close", "next_open", "investable")
VIEW_TITLES = {
    "next_close": "close t+1 → close t+1+h (JPX)",
    "close": "close t → close t+h (same close, not tradable)",
    "next_open": "open t+1 → open t+1+h",
    "investable": "investable universe (label)",
}


def label_columns(horizons: Sequence[int]) -> list[str]:
    """Columns of the label table a view reads: ``universe`` and every view's targets for the
    horizons and h = 1 (the backtest's daily return)."""
    hs = sorted({1, *horizons})
    views = ("next_close", "close", "next_open")
    return ["universe", *[target_name(h, v) for v in views for h in hs]]


def view_predictions(
    preds: pl.DataFrame,
    labels: pl.DataFrame,
    view: str,
    horizons: Sequence[int],
    label: str = DEFAULT_LABEL,
) -> pl.DataFrame:
    """``preds`` with ``target_{h}d`` (h in horizons and 1) taken from ``labels`` under ``view``
    (``investable``: the ``label``'s targets on the investable rows).

    ``labels``: Date, Code and ``label_columns(horizons)``, e.g. read from ``model_input``. Rows of
    ``preds`` without a label row get NaN targets (and leave the investable view).
    """
    if view not in VIEWS:
        raise ValueError(f"view: {view!r}, want one of {VIEWS}")
    hs = sorted({1, *horizons})
    source = label if view == "investable" else view
    targets = [pl.col(target_name(h, source)).alias(target_col(h)) for h in hs]
    keep = pl.col("universe") == 1 if view == "investable" else pl.lit(True)
    chosen = labels.filter(keep).select("Date", "Code", *targets)
    how: Literal["inner", "left"] = "inner" if view == "investable" else "left"
    out = preds.drop([target_col(h) for h in hs if target_col(h) in preds.columns])
    out = out.join(chosen, on=["Date", "Code"], how=how, maintain_order="left")
    return out.with_columns(
        pl.col(target_col(h)).cast(pl.Float64).fill_null(float("nan")) for h in hs
    )


def views_of(
    by_model: Mapping[str, pl.DataFrame],
    labels: pl.DataFrame,
    horizons: Sequence[int],
    label: str = DEFAULT_LABEL,
) -> dict[str, dict[str, pl.DataFrame]]:
    """``{view: {model label: predictions}}`` for every view."""
    return {
        view: {k: view_predictions(v, labels, view, horizons, label) for k, v in by_model.items()}
        for view in VIEWS
    }


def universe_size(labels: pl.DataFrame) -> pl.DataFrame:
    """Per date: ``stocks`` (rows) and ``investable`` (rows in the universe), sorted by Date."""
    return (
        labels.group_by("Date")
        .agg(stocks=pl.len(), investable=(pl.col("universe") == 1).sum().cast(pl.Int64))
        .sort("Date")
    )
