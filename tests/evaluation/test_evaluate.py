import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.evaluate import (
    EvaluationConfig,
    daily_series,
    evaluate,
    universe_check,
)
from atft_kedro.evaluation.predictions import split_by_model
from atft_kedro.evaluation.report import universe_message
from atft_kedro.evaluation.turnover import BookConfig
from atft_kedro.evaluation.views import universe_size
from atft_kedro.features import build_features
from atft_kedro.features.universe import UniverseConfig
from atft_kedro.market.panel import build_panel
from atft_kedro.market.synthetic import generate_market

CFG = EvaluationConfig(cost_bps=5.0, top_n=10, n_boot=300)


@pytest.fixture(scope="module")
def evaluation(predictions_by_model):
    return evaluate(predictions_by_model, [1, 5], CFG)


def test_evaluation_is_strict_json_with_every_block(evaluation, predictions_by_model):
    json.dumps(evaluation, allow_nan=False)  # raises on NaN: non-finite must be null
    assert set(evaluation["models"]) == set(predictions_by_model)
    for per_h in evaluation["models"].values():
        for h in ("h1", "h5"):
            assert set(per_h[h]["folds"]) == {"0", "1"}
            block = per_h[h]["pooled"]
            assert len(block["deciles"]) == 10
            for scheme in ("quantile", "jpx"):
                bt = block["backtest"][scheme]
                assert bt["net"]["sharpe"] < bt["gross"]["sharpe"]
                assert len(bt["net_sharpe_ci95"]) == 2
    h5 = evaluation["models"]["momentum"]["h5"]["pooled"]["backtest"]["quantile"]
    assert h5["method"] == "overlapping_sleeves"


def test_pooled_covers_the_folds_and_skill_orders_models(evaluation):
    models = evaluation["models"]
    pooled = models["atft_gat_fan/phase2"]["h1"]["pooled"]
    folds = models["atft_gat_fan/phase2"]["h1"]["folds"]
    assert pooled["rank_ic"]["n_days"] == sum(f["rank_ic"]["n_days"] for f in folds.values())
    means = {k: v["h1"]["pooled"]["rank_ic"]["mean"] for k, v in models.items()}
    assert means["oracle"] > means["atft_gat_fan/phase2"] > means["momentum"]
    lo, hi = pooled["rank_ic_mean_ci95"]
    assert lo < pooled["rank_ic"]["mean"] < hi


def test_results_do_not_depend_on_which_other_models_are_evaluated(
    evaluation, predictions_by_model
):
    alone = evaluate({"momentum": predictions_by_model["momentum"]}, [1, 5], CFG)
    assert alone["models"]["momentum"] == evaluation["models"]["momentum"]


def test_daily_series_for_plots(predictions_by_model):
    series = daily_series(predictions_by_model, [1], CFG)
    assert series.height == 3 * 120
    assert {"model", "horizon", "Date", "rank_ic", "quantile_net", "jpx_gross"} <= set(
        series.columns
    )
    assert np.isfinite(series["quantile_net"].to_numpy()).all()


def test_duplicate_rows_are_refused_with_an_example(predictions_by_model):
    stacked = pl.concat(list(predictions_by_model.values()))
    with pytest.raises(ValueError, match=r"duplicate \(Date, Code\) rows \(first: Code 13000"):
        evaluate({"mixed": stacked}, [1], CFG)
    assert set(split_by_model(stacked)) == set(predictions_by_model)


def test_jpx_metric_is_the_competitions_score_by_hand():
    """Six stocks a day (< 400): m = min(200, 6 // 2) = 3 per side, weights 2, 1.5, 1."""
    rng = np.random.default_rng(4)
    pred, ret = rng.standard_normal((5, 6)), rng.standard_normal((5, 6)) * 0.02
    days = [date(2024, 1, d) for d in range(4, 9)]
    table = pl.DataFrame(
        {
            "Date": [d for d in days for _ in range(6)],
            "Code": [f"{1300 + i}0" for _ in days for i in range(6)],
            "fold": 0,
            "pred_1d": pred.ravel(),
            "target_1d": ret.ravel(),
        }
    )
    w = np.array([2.0, 1.5, 1.0])
    spreads = []
    for p, r in zip(pred, ret, strict=True):
        by_rank = r[np.argsort(-p)]
        spreads.append((by_rank[:3] @ w) / w.sum() - (by_rank[::-1][:3] @ w) / w.sum())
    kaggle = np.mean(spreads) / np.std(spreads, ddof=1)
    cfg = EvaluationConfig(top_n=200, min_stocks=2, n_boot=300)
    block = evaluate({"m": table}, [1], cfg)["models"]["m"]["h1"]["pooled"]
    assert block["jpx_metric"]["score"] == pytest.approx(kaggle)
    assert block["jpx_metric"]["score"] == pytest.approx(
        block["backtest"]["jpx"]["gross"]["daily_sharpe"]
    ), "the gross daily Sharpe of the JPX book: no second implementation"
    assert block["jpx_metric"]["n_days"] == 5 and len(block["jpx_metric"]["score_ci95"]) == 2


def test_the_jpx_metric_leaves_every_other_figure_as_it_was(evaluation):
    """It is drawn after the other intervals: the same seed gives the same CI95s."""
    for per_h in evaluation["models"].values():
        assert "jpx_metric" in per_h["h1"]["pooled"] and "jpx_metric" not in per_h["h5"]["pooled"]
        lo, hi = per_h["h1"]["pooled"]["jpx_metric"]["score_ci95"]
        assert lo < per_h["h1"]["pooled"]["jpx_metric"]["score"] < hi


def _size(investable: list[int]) -> pl.DataFrame:
    n = len(investable)
    return pl.DataFrame(
        {
            "Date": [date(2024, 1, 1) + timedelta(days=d) for d in range(n)],
            "stocks": [300] * n,
            "investable": investable,
        }
    )


def test_universe_check_fires_below_what_the_book_needs_on_the_median_day():
    book = BookConfig(min_names_per_side=10)
    thin = universe_check(_size([7, 6, 9, 150, 8]), 0.1, book)
    assert thin == {
        "needed": 100,
        "quantile": 0.1,
        "min_names_per_side": 10,
        "median": 8.0,
        "stocks_median": 300.0,
        "min": 6,
        "days_below": 4,
        "days": 5,
        "fired": True,
    }
    message = universe_message(thin)
    for number in (
        "keeps 8 of 300 stocks",
        "fewest 6",
        "4 of 5 test days below 100",
        "quantile 0.1",
    ):
        assert number in message
    wide = universe_check(_size([120, 99, 130]), 0.1, book)
    assert not wide["fired"] and wide["days_below"] == 1 and universe_message(wide) == ""


def test_universe_check_is_silent_on_the_default_synthetic_market_and_fires_with_yen_floors_abroad():
    market = generate_market("small", seed=42)
    panel = build_panel(market["daily_quotes"], market["listed_info"])
    dollars = panel.with_columns(pl.col("open", "high", "low", "close", "turnover") / 150.0)
    cfg = EvaluationConfig()  # quantile 0.1 of conf/base: 100 stocks for 10 per side
    checks = {}
    for name, data, universe in (
        ("default", panel, UniverseConfig()),
        ("yen floors", dollars, UniverseConfig(floors="absolute")),
        ("relative", dollars, UniverseConfig()),
    ):
        features = build_features(data, horizons=(1,), universe=universe)
        size = universe_size(
            features.filter(pl.col("Date") >= features["Date"].unique().sort()[-240])
        )
        checks[name] = universe_check(size, cfg.quantile, BookConfig())
    assert not checks["default"]["fired"] and checks["default"]["median"] > 150
    assert checks["yen floors"]["fired"] and checks["yen floors"]["median"] < 40
    assert not checks["relative"]["fired"] and checks["relative"]["median"] > 150, checks
