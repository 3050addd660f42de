"""The torchrun entry point: two gloo ranks train phase 0 of a tiny Kedro project copy."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from atft_kedro.pipelines.training.ddp_main import runtime_params
from atft_kedro.training.checkpoints import CheckpointStore
from tests.e2e.conftest import KedroProject

# A smaller synthetic market than `tiny` (fewer codes and sessions): the 2-rank run stays short.
MARKET = "market.synthetic.overrides.n_codes=24,market.synthetic.overrides.n_days=230"


def test_runtime_params_nest_dotted_keys_and_keep_bracketed_commas():
    assert runtime_params("seed=7,training.folds=[0,1],training.model.hidden=8") == {
        "seed": 7,
        "training": {"folds": [0, 1], "model": {"hidden": 8}},
    }
    assert runtime_params("") == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        runtime_params("seed")


@pytest.mark.slow
def test_torchrun_two_ranks_train_phase_zero_into_the_pipeline_store(tmp_path):
    project = KedroProject(tmp_path)
    prepared = project.run("--pipelines", "data_processing,graph", "--params", MARKET)
    assert prepared.returncode == 0, prepared.stderr[-3000:]

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "atft_kedro.pipelines.training.ddp_main",
        "--env",
        "tiny",
        "--phase",
        "0",
        "--params",
        f"{MARKET},training.threads=1",
    ]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=project.path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]

    store = CheckpointStore(project.path / "data" / "06_models" / "checkpoints")
    assert store.available() == [(0, 0, "best"), (0, 0, "last")]  # phase 0 only, no stray files
    best = store.load(0, 0, "best")
    assert (best["fold"], best["phase"], best["epoch"]) == (0, 0, 1)
    assert best["world_size"] == 2 and best["params"]["run"]["world_size"] == 2
    assert all(
        torch.isfinite(t).all() for t in best["model_state"].values() if t.is_floating_point()
    )
    last = store.load(0, 0, "last")
    for key in ("optimizer_state", "scheduler_state", "loss_state", "rng_state", "global_step"):
        assert key in last, key  # a one-process `kedro run` can resume it

    metrics_dir = project.path / "data" / "08_reporting" / "training_metrics"
    assert sorted(p.name for p in metrics_dir.iterdir()) == ["fold0_phase0.json"]
    record = json.loads((metrics_dir / "fold0_phase0.json").read_text())
    assert record["distributed"]["world_size"] == 2
    assert len(record["epochs"]) == 1 and record["best_epoch"] == 1
    assert math.isfinite(record["epochs"][0]["train_total"]), "the training curve's loss"
    assert math.isfinite(record["best_val_rank_ic"])
    assert record["checkpoint"].endswith("fold0/phase0/best.pt")
