"""Is a result too good to be true? A check against the published band, with its diagnostics.

Good models on liquid equity markets reach a daily RankIC at h = 1 of about 0.04–0.07
(docs/design.md, Realistic bands). Above the band a result is a mirage until shown otherwise; on data with a clean
pipeline the usual cause is microstructure, not skill:

* **stale or discrete closes**: a close unchanged from the previous session (no trade, or a price
  stuck on a coarse tick) makes the next return predictable from the last one;
* **bid-ask bounce**: a close on the bid is followed by one nearer the ask, so minus the 1-day
  return predicts the next 1-day return (1-day reversal RankIC) and every model learns it;
* both vanish when the trade happens after the signal (next-session entry) and shrink on liquid,
  finely ticked stocks (the investable universe).

``realism_check`` fires when any model or baseline, or the 1-day reversal, is above the band at
h = 1 under the label (next-session entry by default; pooled test days). Ceilings (oracle,
structural) are yardsticks, not predictors, and never fire it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from atft_kedro.evaluation.baselines import CEILINGS
from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.features.labels import DEFAULT_LABEL, target_name

#: daily RankIC at h = 1 of good models on liquid markets (docs/design.md, Realistic bands)
PUBLISHED_BAND = (0.04, 0.07)


def unchanged_close_share(panel: pl.DataFrame) -> float | None:
    """Share of rows whose close equals the code's previous row's close (both positive).

    ``panel``: Date, Code, close (any order). None when no row has a previous close.
    """
    close = pl.when(pl.col("close") > 0).then(pl.col("close"))
    frame = panel.select("Code", "Date", close=close).sort("Code", "Date")
    pairs = frame.with_columns(previous=pl.col("close").shift(1).over("Code")).drop_nulls()
    if pairs.height == 0:
        return None
    return float(pairs.select((pl.col("close") == pl.col("previous")).mean()).item())


def reversal_rank_ic(
    table: pl.DataFrame,
    dates: Sequence[Any] | pl.Series | None = None,
    min_stocks: int = 10,
    label: str = DEFAULT_LABEL,
) -> float | None:
    """Mean daily RankIC of minus the 1-day return (``ret_1d``) against the 1-day return of
    ``label`` (``target_name(1, label)``: ``target_next_1d`` for next-session entry).

    ``table``: Date, Code, ret_1d and that target (a per-day monotone transform of ``ret_1d``,
    such as the cross-sectional z-score, leaves the RankIC unchanged). ``dates``: the days to
    average over (None: all).
    """
    if dates is not None:
        table = table.filter(pl.col("Date").is_in(pl.Series(list(dates)).cast(pl.Date).implode()))
    target = pl.col(target_name(1, label))
    preds = table.select("Date", pred=-pl.col("ret_1d").cast(pl.Float64), y=target)
    ic = daily_ic(preds, "pred", "y", min_stocks).table
    return float(ic["rank_ic"].mean()) if ic.height else None  # type: ignore[arg-type]


def _rank_ic(models: Mapping[str, Any], label: str, h: int = 1) -> float | None:
    return models.get(label, {}).get(f"h{h}", {}).get("pooled", {}).get("rank_ic", {}).get("mean")


def realism_check(
    views: Mapping[str, Mapping[str, Any]],
    unchanged_share: float | None,
    reversal_1d: float | None,
    band: tuple[float, float] = PUBLISHED_BAND,
    label: str = DEFAULT_LABEL,
) -> dict[str, Any]:
    """The realism block of the evaluation JSON.

    Args:
        views: ``{view: {model: per-horizon metrics}}`` (``evaluate`` "models" blocks) with at
            least the ``label``'s view; the other views feed the diagnostics.
        unchanged_share: ``unchanged_close_share`` of the panel.
        reversal_1d: ``reversal_rank_ic`` against the label on the test days.
        band: the published RankIC band at h = 1.
        label: the view whose figures are judged (the headline's).

    Returns:
        ``{"band", "label", "fired", "above_band": [{"model", "rank_ic"}],
        "unchanged_close_share", "reversal_1d_rank_ic", "models": [{"model", <view>: RankIC at
        h = 1, ...}]}``.
    """
    judged = views[label]
    predictors = {m: _rank_ic(judged, m) for m in judged if m not in CEILINGS}
    predictors["1-day reversal"] = reversal_1d
    above = [
        {"model": k, "rank_ic": v} for k, v in predictors.items() if v is not None and v > band[1]
    ]
    rows = [
        {"model": m, **{view: _rank_ic(views.get(view, {}), m) for view in views}} for m in judged
    ]
    return {
        "band": list(band),
        "label": label,
        "fired": bool(above),
        "above_band": above,
        "unchanged_close_share": unchanged_share,
        "reversal_1d_rank_ic": reversal_1d,
        "models": rows,
    }


def realism_message(realism: Mapping[str, Any]) -> str:
    """One paragraph for the top of the report when the check fired ('' when it did not)."""
    if not realism.get("fired"):
        return ""
    lo, hi = realism["band"]
    names = ", ".join(f"{a['model']} {a['rank_ic']:.3f}" for a in realism["above_band"])
    share = realism.get("unchanged_close_share")
    reversal = realism.get("reversal_1d_rank_ic")
    parts = [
        f"Realism check: RankIC at h = 1 above the published band {lo:.2f}–{hi:.2f} for {names}.",
        "Such figures usually come from the market's microstructure, not from skill.",
    ]
    if share is not None:
        parts.append(f"Unchanged closes: {100 * share:.1f}% of rows.")
    if reversal is not None:
        parts.append(f"1-day reversal RankIC: {reversal:.3f}.")
    parts.append(
        "Trust the next-session and investable-universe columns of the "
        "'Views' table below, not the close-to-close ones."
    )
    return " ".join(parts)
