"""The realism check fires on bid-ask bounce over a coarse tick grid and stays silent on the
default synthetic market."""

import numpy as np
import polars as pl

from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.evaluation.realism import (
    realism_check,
    realism_message,
    reversal_rank_ic,
    unchanged_close_share,
)
from atft_kedro.evaluation.views import view_predictions
from atft_kedro.features import build_features
from atft_kedro.market.panel import build_panel
from atft_kedro.market.synthetic import generate_market
from tests.features.tables import make_panel


def bounce_panel(n_codes: int = 60, n_days: int = 200, seed: int = 0) -> pl.DataFrame:
    """An efficient market (mid prices follow random walks, nothing predictable) whose closes
    print on the bid or the ask at random, on a 1-yen grid at 40-150 yen (0.7-2.5% a tick)."""
    rng = np.random.default_rng(seed)
    base = make_panel(n_codes=n_codes, n_days=n_days, seed=seed).sort("Code", "Date")
    mid = rng.uniform(40, 150, n_codes)[:, None] * np.exp(
        np.cumsum(rng.normal(0, 0.01, (n_codes, n_days)), axis=1)
    )
    side = rng.choice([-1.0, 1.0], size=mid.shape)
    close = np.maximum(np.round(mid + side * 0.5), 1.0).ravel()  # half a yen spread each side
    return base.with_columns(
        *(pl.Series(c, close) for c in ("open", "high", "low", "close")),
        turnover=pl.Series(close * 1e6),
    ).sort("Date", "Code")


def _fires(band_model_ic: float | None = None, label: str = "next_close", **kw) -> dict:
    models = (
        {}
        if band_model_ic is None
        else {"m": {"h1": {"pooled": {"rank_ic": {"mean": band_model_ic}}}}}
    )
    return realism_check({label: models}, label=label, **kw)


def test_fires_on_planted_bid_ask_bounce_close_to_close_and_not_for_the_next_session_label():
    panel = bounce_panel()
    features = build_features(panel, horizons=(1,))
    share = unchanged_close_share(panel)
    assert share > 0.1, "coarse ticks leave many closes unchanged"
    # close to close: the bounce makes minus the 1-day return predictive, and the check fires
    reversal = reversal_rank_ic(features, label="close")
    assert reversal > 0.2
    realism = _fires(unchanged_share=share, reversal_1d=reversal, label="close")
    assert realism["fired"] and realism["above_band"][0]["model"] == "1-day reversal"
    message = realism_message(realism)
    assert "above the published band" in message and "Unchanged closes" in message
    # the default label (next-session entry): the bounce is gone and the check stays silent
    reversal_next = reversal_rank_ic(features)
    assert abs(reversal_next) < 0.05
    quiet = _fires(unchanged_share=share, reversal_1d=reversal_next)
    assert not quiet["fired"] and realism_message(quiet) == "" and quiet["label"] == "next_close"
    # the same reversal signal, entered at the next session's close: nothing left
    preds = features.select("Date", "Code", pred_1d=-pl.col("ret_1d"), target_1d="target_1d")
    labels = features.select(
        "Date", "Code", "universe", *[c for c in features.columns if c.startswith("target_")]
    )
    lagged = view_predictions(preds, labels, "next_close", [1])
    assert abs(daily_ic(lagged, "pred_1d", "target_1d").table["rank_ic"].mean()) < 0.05


def test_silent_on_the_default_synthetic_market():
    market = generate_market("small", seed=42)
    panel = build_panel(market["daily_quotes"], market["listed_info"])
    features = build_features(panel, horizons=(1,))
    realism = _fires(
        0.05, unchanged_share=unchanged_close_share(panel), reversal_1d=reversal_rank_ic(features)
    )
    assert not realism["fired"] and realism_message(realism) == ""
    assert realism["unchanged_close_share"] < 0.01


def test_any_model_above_the_band_fires_but_ceilings_do_not():
    assert _fires(0.071, unchanged_share=None, reversal_1d=None)["fired"]
    assert not _fires(0.069, unchanged_share=None, reversal_1d=None)["fired"]
    oracle = {"oracle": {"h1": {"pooled": {"rank_ic": {"mean": 0.5}}}}}
    assert not realism_check({"next_close": oracle}, None, None)["fired"]


def test_unchanged_close_share_by_hand():
    panel = pl.DataFrame(
        {
            "Date": [1, 2, 3, 4, 1, 2, 3],
            "Code": ["A"] * 4 + ["B"] * 3,
            "close": [10.0, 10.0, 11.0, None, 5.0, 5.0, 5.0],
        }
    )
    # pairs: A 1-2 same, A 2-3 changed, B 1-2 same, B 2-3 same (A 3-4: no close on 4)
    assert unchanged_close_share(panel) == 0.75
