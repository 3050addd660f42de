"""hpo pipeline on the tiny market: two worker processes share one SQLite study, then summarise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import polars as pl
import pytest
import yaml

from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.features.day_major import write_day_major_parquet
from atft_kedro.pipelines.hpo.nodes import hpo_report_node, summarise_study_node
from atft_kedro.pipelines.hpo.pipeline import create_pipeline
from tests.training.tiny_market import (
    HORIZONS,
    N_DAYS,
    SEQ_LEN,
    full_graph,
    tiny_features,
    tiny_splits,
    tiny_training_params,
    trading_days,
)

TRIALS_PER_WORKER = 2


def hpo_params(storage: Path, worker: int) -> dict:
    return {
        "study_name": "tiny",
        "storage": str(storage),
        "worker": worker,
        "n_trials": TRIALS_PER_WORKER,
        "phase": 1,
        "fold": 0,
        "max_epochs": 1,
        "n_startup_trials": 2,
        "pruner": {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        "search_space": {
            "lr_scale": {
                "path": "phases.*.lr",
                "type": "float",
                "low": 0.5,
                "high": 2.0,
                "log": True,
                "mode": "scale",
            },
            "hidden": {"path": "model.hidden", "type": "categorical", "choices": [4, 8]},
            "fan_windows": {
                "path": "model.fan.windows",
                "type": "categorical",
                "choices": [[2, 4], [2]],
            },
            "graph_k": {"path": "graph.k", "type": "int", "low": 2, "high": 6, "step": 2},
        },
    }


def node_inputs(market: dict, storage: Path, worker: int) -> dict:
    return {
        "model_input": DayMajorParquet(Path(market["features"])),
        "graph_edges": pl.read_parquet(market["graph_edges"]),
        "splits": market["splits"],
        "training": tiny_training_params(),
        "label": "next_close",
        "hpo": hpo_params(storage, worker),
        "graph": {"k": 6},
        "seed": 0,
        "horizons": HORIZONS,
        "seq_len": SEQ_LEN,
    }


# A worker is a separate Python process that runs the optimise node, as `kedro run --pipeline hpo`
# on another machine would.
WORKER = """
import json, sys
import polars as pl
from pathlib import Path
from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.pipelines.hpo.nodes import optimise_node
a = json.loads(sys.argv[1])
optimise_node(model_input=DayMajorParquet(Path(a["features"])),
              graph_edges=pl.read_parquet(a["graph_edges"]), splits=a["splits"],
              training=a["training"], label="next_close", hpo=a["hpo"], graph=a["graph"], seed=0,
              horizons=a["horizons"], seq_len=a["seq_len"])
"""


@pytest.fixture
def tiny_market(tmp_path: Path) -> dict:
    days = trading_days(N_DAYS)
    features = tmp_path / "features.parquet"
    write_day_major_parquet(tiny_features(), features, days_per_row_group=1)
    edges = tmp_path / "graph_edges.parquet"
    full_graph(days).write_parquet(edges)
    return {"features": str(features), "graph_edges": str(edges), "splits": tiny_splits(days)}


@pytest.mark.slow
def test_two_workers_share_one_study_and_summarise(tiny_market, tmp_path):
    storage = tmp_path / "study.db"
    args = [
        json.dumps(
            {
                **tiny_market,
                "training": tiny_training_params(),
                "hpo": hpo_params(storage, w),
                "graph": {"k": 6},
                "horizons": HORIZONS,
                "seq_len": SEQ_LEN,
            }
        )
        for w in (0, 1)
    ]
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, a], stderr=subprocess.PIPE, text=True)
        for a in args
    ]
    errors = [p.communicate(timeout=300)[1] for p in workers]
    assert [p.returncode for p in workers] == [0, 0], errors[0][-2000:] + errors[1][-2000:]

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{storage}")
    assert len(study.trials) == 2 * TRIALS_PER_WORKER
    assert all(t.state.is_finished() for t in study.trials)
    assert sum(t.user_attrs.get("configuration") == "default" for t in study.trials) == 1

    inputs = node_inputs(tiny_market, storage, 0)
    trials, fragment, comparison = summarise_study_node(hpo_study={"study_name": "tiny"}, **inputs)
    assert trials.height == 2 * TRIALS_PER_WORKER
    assert trials["number"].to_list() == list(range(2 * TRIALS_PER_WORKER))
    best = study.best_trial
    assert fragment["training"]["model"]["hidden"] == best.params["hidden"]
    assert fragment["graph"]["k"] == best.params["graph_k"]
    assert set(fragment["training"]["phases"]) == {"0", "1", "2", "3", "4"}
    yaml.safe_load(yaml.safe_dump(fragment))  # pasteable YAML
    assert comparison["best_value"] == pytest.approx(best.value)
    assert comparison["days"] > 0 and len(comparison["gap_ci95"]) == 2

    html = hpo_report_node(trials, comparison, hpo_params(storage, 0), 0)
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "Best trial vs default" in html


def test_pipeline_wires_outputs_to_catalog_names():
    pipeline = create_pipeline()
    assert pipeline.all_outputs() == {"hpo_study"} | {
        "hpo_trials",
        "hpo_best_params",
        "hpo_comparison",
        "hpo_report",
    }
    assert {"model_input", "graph_edges", "splits", "params:hpo"} <= pipeline.inputs()
