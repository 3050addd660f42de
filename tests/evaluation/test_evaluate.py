import json

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.evaluate import EvaluationConfig, daily_series, evaluate
from atft_kedro.evaluation.predictions import split_by_model

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
