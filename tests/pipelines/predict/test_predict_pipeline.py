"""The Kedro predict pipeline: the latest date's signals from the best checkpoint."""

from __future__ import annotations

import polars as pl
import pytest
from kedro.io import MemoryDataset
from kedro.runner import SequentialRunner

from atft_kedro.pipelines.predict import create_pipeline
from atft_kedro.pipelines.predict.nodes import latest_graph
from tests.pipelines.reporting.tiny_run import CHOSEN, LABEL, catalog, tiny_run


def signals(**predict) -> pl.DataFrame:
    params = {"horizon": 1, "fold": None, "phase": None, "threads": 1} | predict
    data = catalog(tiny_run(), **{"params:predict": MemoryDataset(params)})
    return SequentialRunner().run(create_pipeline(), data)["signals"].load()


def test_one_row_per_code_of_the_latest_date_ranked_1_to_n():
    run = tiny_run()
    table = run.features.read(["Date", "Code"])
    latest = table["Date"].max()
    codes = table.filter(pl.col("Date") == latest)["Code"].sort().to_list()
    out = signals()
    assert out.columns == [
        "Date",
        "Code",
        "score",
        "q0.1",
        "q0.25",
        "q0.5",
        "q0.75",
        "q0.9",
        "rank",
        "investable",
        "horizon",
        "fold",
        "phase",
        "label",
    ]
    assert sorted(out["Code"].to_list()) == codes
    assert (out["Date"] == latest).all()
    assert out["rank"].to_list() == list(range(1, len(codes) + 1))
    flags = run.features.read(["Date", "Code", "universe"]).filter(pl.col("Date") == latest)
    joined = out.join(flags, on="Code")
    assert (joined["investable"] == joined["universe"]).all()
    assert out["score"].is_sorted(descending=True)
    assert (out["score"] == out["q0.5"]).all(), "the score is the median prediction"
    assert (out["label"] == LABEL).all(), "the label the model was fitted to"
    assert out.select((pl.col("fold") == 1) & (pl.col("phase") == CHOSEN[1])).to_series().all(), (
        "default: the latest fold's final model, the phase chosen on its validation days"
    )


def test_a_configured_phase_is_used_and_a_missing_one_is_named():
    assert (signals(phase=0, horizon=5)["phase"] == 0).all()
    with pytest.raises(ValueError, match=r"no best checkpoint of phase 4"):
        signals(phase=4)


def test_latest_graph_reuses_the_last_graph_built_on_or_before_the_day():
    edges = tiny_run().graph_edges
    days = edges["Date"].unique().sort()
    day = days[-1]
    same = latest_graph(edges, day)
    assert same.height == edges.filter(pl.col("Date") == day).height
    older = latest_graph(edges.filter(pl.col("Date") < day), day)
    assert (older["Date"] == day).all()
    assert older.height == edges.filter(pl.col("Date") == days[-2]).height
    assert latest_graph(edges, days[0] - (days[1] - days[0]) * 400) is None
