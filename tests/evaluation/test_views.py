"""Tradable views: the same predictions scored with next-session entry and on the universe."""

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.evaluate import evaluate
from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.evaluation.views import VIEWS, label_columns, view_predictions, views_of
from atft_kedro.features import build_features
from atft_kedro.market.panel import build_panel
from atft_kedro.market.synthetic import generate_market
from tests.evaluation.conftest import make_predictions


def _labels(preds: pl.DataFrame, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = preds.height
    return preds.select("Date", "Code").with_columns(
        universe=pl.Series(rng.integers(0, 2, n), dtype=pl.Int8),
        **{c: pl.Series(rng.standard_normal(n)) for c in label_columns([1, 5]) if c != "universe"},
    )


def test_each_view_takes_its_own_targets():
    preds = make_predictions("m", 0.5, 0)
    labels = _labels(preds)
    for view, prefix in (
        ("close", "target"),
        ("next_close", "target_next"),
        ("next_open", "target_open"),
    ):
        out = view_predictions(preds, labels, view, [1, 5])
        assert out.height == preds.height
        assert out["pred_1d"].equals(preds["pred_1d"])
        for h in (1, 5):
            assert np.array_equal(
                out[f"target_{h}d"].to_numpy(), labels[f"{prefix}_{h}d"].to_numpy()
            )
    kept = labels.filter(pl.col("universe") == 1)
    for label, prefix in (("next_close", "target_next"), ("close", "target")):
        investable = view_predictions(preds, labels, "investable", [1, 5], label)
        assert investable.height == int(labels["universe"].sum())
        assert np.array_equal(investable["target_1d"].to_numpy(), kept[f"{prefix}_1d"].to_numpy())


def test_views_evaluate_like_the_close_view():
    preds = make_predictions("m", 0.5, 0)
    labels = preds.select("Date", "Code", "target_1d", "target_5d").with_columns(
        universe=pl.lit(1, pl.Int8),
        target_next_1d=pl.col("target_1d"),
        target_next_5d=pl.col("target_5d"),
        target_open_1d=pl.col("target_1d"),
        target_open_5d=pl.col("target_5d"),
    )
    per_view = views_of({"m": preds}, labels, [1, 5])
    assert set(per_view) == set(VIEWS)
    reference = evaluate({"m": preds}, [1, 5])["models"]
    for tables in per_view.values():
        assert evaluate(tables, [1, 5])["models"] == reference


def test_unknown_view_is_an_error():
    preds = make_predictions("m", 0.5, 0)
    with pytest.raises(ValueError, match="view"):
        view_predictions(preds, _labels(preds), "tomorrow", [1])


def test_next_session_oracle_is_the_ceiling_of_the_next_session_view():
    """The lagged oracle (E_t of close t+1 -> t+1+h) ranks next-session returns better than the
    close-to-close oracle, which spends its edge on day t+1 itself."""
    market = generate_market("tiny", seed=0)
    features = build_features(
        build_panel(market["daily_quotes"], market["listed_info"]), horizons=(1,)
    )
    joined = features.join(market["oracle_alpha"], on=["Date", "Code"])
    lagged = daily_ic(joined, "alpha_next_1d", "target_next_1d").table["rank_ic"].mean()
    same_day = daily_ic(joined, "alpha_1d", "target_next_1d").table["rank_ic"].mean()
    planted = daily_ic(joined, "alpha_1d", "target_1d").table["rank_ic"].mean()
    assert lagged > 0.03 and lagged > same_day + 0.02
    assert planted > lagged, "entering a session later forgoes the day-t+1 part of the alpha"
