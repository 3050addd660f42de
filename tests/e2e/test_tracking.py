"""Tracked runs: each `kedro run` is one MLflow run (parameters, curves, final metrics, tags,
artifacts); a second run is a second run, both listed by `python -m atft_kedro.compare`; the hpo
pipeline's trials are runs nested under its run."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from atft_kedro.compare import recent_runs, tracking
from tests.e2e.conftest import RUN_PARAMS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(kedro_project):
    """The project copy after `kedro run` (seed 42) and `kedro run --params seed=7`."""
    for extra in ("", ",seed=7"):
        result = kedro_project.run("--params", RUN_PARAMS + extra)
        assert result.returncode == 0, result.stderr[-3000:]
    uri, experiment = tracking(kedro_project.path)
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        order_by=["attributes.start_time ASC"],
    )
    return kedro_project, client, runs


def test_a_run_records_parameters_curves_metrics_tags_and_artifacts(two_runs):
    _, client, runs = two_runs
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    first = runs[0]
    params = first.data.params
    assert params["seed"] == "42" and params["market.preset"] == "tiny"
    assert first.info.run_name == "__default__ | synthetic tiny | seed 42 | phase 0"  # phase=0
    assert params["market.synthetic.overrides.n_codes"] == "24"  # from --params, flattened
    assert params["label"] == "next_close" and first.data.tags["label"] == "next_close"
    assert first.data.tags["data.source"] == "synthetic" and first.data.tags["data.seed"] == "42"
    assert first.data.tags["final_model"] == "atft/final"  # each fold's phase chosen on validation
    metrics = first.data.metrics
    lo, mid, hi = (metrics[f"final/h1/rank_ic{s}"] for s in ("_lo", "", "_hi"))
    assert lo <= mid <= hi
    assert metrics["final/h1/rank_ic"] == metrics["atft/phase0/h1/rank_ic"]
    assert "final/h1/share_of_oracle" in metrics and "final/h1/net_sharpe" in metrics
    curve = client.get_metric_history(first.info.run_id, "fold0_phase0/val_rank_ic_1d")
    assert [m.step for m in curve] == [1]  # one epoch per phase on `tiny`
    artifacts = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"report", "evaluation", "predictions", "figures", "training_metrics"} <= artifacts
    assert {a.path for a in client.list_artifacts(first.info.run_id, "report")} == {
        "report/report.html"
    }


def test_the_second_run_keeps_its_own_results_and_compare_lists_both(two_runs):
    project, client, runs = two_runs
    assert runs[1].data.params["seed"] == "7"
    ics = [r.data.metrics["final/h1/rank_ic"] for r in runs]
    assert ics[0] != ics[1]  # two markets: two results, neither overwritten
    listed = recent_runs(project.path, 10)
    assert [r["params"]["seed"] for r in listed] == ["7", "42"]  # newest first
    assert listed[0]["rank_ic"] == pytest.approx(ics[1])
    done = subprocess.run(
        [sys.executable, "-m", "atft_kedro.compare", "--plot", "runs.png"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum("FINISHED" in line for line in done.stdout.splitlines()) == 2
    assert (project.path / "runs.png").stat().st_size > 1000


def test_hpo_trials_are_nested_runs_under_one_parent(two_runs):
    project, client, _ = two_runs
    result = project.run("--pipeline", "hpo", "--params", "hpo.n_trials=4,hpo.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    experiment = client.get_experiment_by_name(tracking(project.path)[1]).experiment_id
    parent = client.search_runs([experiment], "attributes.run_name LIKE 'hpo | %'")
    assert len(parent) == 1
    trials = client.search_runs(
        [experiment], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'"
    )
    assert len(trials) == 4
    assert {t.data.tags["optuna.state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    assert any("hpo.best." in p for p in parent[0].data.params)
    assert "hpo/best_mean_rank_ic" in parent[0].data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent[0].info.run_id)}
    assert {"hpo_report", "hpo_trials", "hpo_best_params"} <= artifacts
    # the comparison lists the three `kedro run`s, not the trials nested under the hpo one
    assert len(recent_runs(project.path, 10)) == 3
