"""predict_days: the predictions contract, chronological, one row per (Date, Code) of the batches."""

from __future__ import annotations

import polars as pl

from atft_kedro.inference.predict import predict_days
from atft_kedro.loader.datasets import make_day_dataset
from atft_kedro.model import ATFTGATFAN
from atft_kedro.training.fold_data import input_columns
from tests.training.conftest import tiny_market as tiny_market  # the fixture
from tests.training.tiny_market import HORIZONS, SEQ_LEN, tiny_config


def test_predictions_follow_the_contract(tiny_market):
    names = pl.read_parquet_schema(tiny_market["features"])
    features, masks = input_columns(list(names))
    days = tiny_market["days"][40:50]
    dataset = make_day_dataset(
        "streaming",
        features_path=tiny_market["features"],
        dates=days,
        columns=[*features, *masks],
        horizons=HORIZONS,
        seq_len=SEQ_LEN,
        graph_edges_path=tiny_market["graph_edges"],
    )
    model = ATFTGATFAN(tiny_config().model.with_inputs(len(features) + len(masks)))
    quantiles = model.cfg.quantiles
    table = predict_days(model, dataset, HORIZONS, quantiles, fold=0, phase=2)
    assert table.columns[:5] == ["Date", "Code", "model", "fold", "phase"]
    for h in HORIZONS:
        assert {f"pred_{h}d", f"target_{h}d", f"q0.1_{h}d", f"q0.9_{h}d"} <= set(table.columns)
        assert (table[f"q0.1_{h}d"] <= table[f"q0.9_{h}d"]).all()
    assert table["Date"].unique().sort().to_list() == days
    assert table.select(pl.struct("Date", "Code").is_duplicated().any()).item() is False
    assert table["Date"].is_sorted()
    assert table["phase"].unique().to_list() == [2]
