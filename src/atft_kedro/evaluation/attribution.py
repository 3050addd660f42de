"""What the model captures: each predictor scored against each planted effect (synthetic market).

The synthetic market plants its expected return as a sum of named effects and writes each effect's
part (``alpha_components``: ``{effect}_1d`` close to close, ``{effect}_next_1d`` with next-session
entry; evaluation only, like ``oracle_alpha``). The mean daily RankIC of a model's h = 1 prediction
against an effect's part says how much of that effect the model ranks like the market does: near
the effect's own RankIC against the other effects' mix, the effect was learned; near 0, missed.

Under next-session entry the one-day effects (a stock following yesterday's cluster peers,
reverting its own move) are gone: their next-session parts are 0, and only the persistent effects
(regime-dependent momentum, post-earnings drift, investor flows) carry a tradable edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.evaluation.predictions import pred_col, target_col

#: the planted effects, in the generator's order (market.synthetic_config.ALPHA_COMPONENTS)
EFFECTS = ("lead_lag", "regime_momentum", "reversal", "earnings_drift", "investor_flow")


def effect_column(effect: str, label: str) -> str:
    """The ``alpha_components`` column of an effect under a label: close to close reads the
    same-close part, the next-session labels the next-session part."""
    return f"{effect}_1d" if label == "close" else f"{effect}_next_1d"


def _mean_rank_ic(table: pl.DataFrame, pred: str, target: str, min_stocks: int) -> float | None:
    daily = daily_ic(table, pred, target, min_stocks).table
    return float(daily["rank_ic"].mean()) if daily.height else None  # type: ignore[arg-type]


def effect_rank_ic(
    by_model: Mapping[str, pl.DataFrame],
    components: pl.DataFrame,
    label: str,
    min_stocks: int = 10,
    oracle: str = "oracle_next",
) -> dict[str, Any]:
    """The ``attribution`` block of the evaluation JSON (h = 1, each model's own test days).

    Returns ``{"label", "effects": [...], "models": {model: {effect: RankIC, "share_of_oracle":
    x}}, "effect_vs_label": {effect: RankIC}}``: a model's mean daily RankIC against each effect's
    part, its RankIC against the label's return as a share of ``oracle``'s, and each effect's
    own RankIC against the label's return (what a predictor of that effect alone would score).
    Effects whose part is 0 on every row (one-day effects under next-session entry) score None.
    """
    columns = {e: effect_column(e, label) for e in EFFECTS if effect_column(e, label) in components}
    keys = components.select("Date", "Code", *columns.values())
    scores: dict[str, dict[str, float | None]] = {}
    for name, preds in by_model.items():
        joined = preds.select("Date", "Code", pred_col(1), target_col(1)).join(
            keys, on=["Date", "Code"], how="inner"
        )
        scores[name] = {
            effect: _mean_rank_ic(joined, pred_col(1), column, min_stocks)
            for effect, column in columns.items()
        }
        scores[name]["rank_ic"] = _mean_rank_ic(joined, pred_col(1), target_col(1), min_stocks)
    ceiling = scores.get(oracle, {}).get("rank_ic")
    for row in scores.values():
        mine = row.pop("rank_ic")
        row["share_of_oracle"] = mine / ceiling if mine is not None and ceiling else None
    reference = next(iter(by_model.values()), None)
    own = {}
    if reference is not None:
        labelled = reference.select("Date", "Code", target_col(1)).join(keys, on=["Date", "Code"])
        own = {e: _mean_rank_ic(labelled, c, target_col(1), min_stocks) for e, c in columns.items()}
    return {
        "label": label,
        "oracle": oracle,
        "effects": list(columns),
        "models": scores,
        "effect_vs_label": own,
    }


def attribution_rows(attribution: Mapping[str, Any], models: Sequence[str]) -> list[dict[str, Any]]:
    """Report rows: each effect's own RankIC against the label, then one row per model."""
    effects = attribution["effects"]
    share = f"RankIC as a share of {attribution['oracle']}'s"
    rows = [
        {
            "model": "the effect itself (vs the label's return)",
            **{e: attribution["effect_vs_label"].get(e) for e in effects},
            share: None,
        }
    ]
    for name in models:
        row = attribution["models"].get(name)
        if row is not None:
            rows.append(
                {
                    "model": name,
                    **{e: row.get(e) for e in effects},
                    share: row.get("share_of_oracle"),
                }
            )
    return rows
