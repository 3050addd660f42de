"""Experiment tracking of each `kedro run` in MLflow, on top of kedro-mlflow.

kedro-mlflow (a Kedro plugin; conf/base/mlflow.yml) opens one MLflow run per `kedro run` in the
project's SQLite store and logs, flattened, every parameter the run's nodes read (after
``--params``). ``TrackingHooks`` adds what a researcher compares across runs:

* the run's name: what ran (pipeline, market, seed and, where it trains, the phase), e.g.
  ``__default__ | synthetic small | seed 42 | phase all``; kedro-mlflow would name every run
  after the pipeline alone;
* tags: the git commit, and the data: the synthetic preset and seed, or the J-Quants files' date
  range and row counts;
* per fold and phase, the validation curve as step metrics (step = epoch), e.g.
  ``fold0_phase2/val_rank_ic_1d``;
* the final evaluation under the run's label (next-session entry by default; tag ``label``): for
  every model and horizon the pooled RankIC, its CI95 bounds and the net Sharpe of the quantile
  long-short book (``atft/phase4/h1/rank_ic``, ``…/rank_ic_lo``, ``…/net_sharpe``), at h = 1 the
  JPX metric and the net Sharpe with turnover control (``…/jpx_metric``,
  ``…/net_sharpe_controlled``, where the model has validation predictions), the same for
  the final model (each fold's phase chosen on validation days) under ``final/``, and its share
  of the oracle, the next-session oracle and the observable ceiling;
* the run's outputs a person compares (report, evaluation, predictions, figures, training curves)
  as artifacts, so every run keeps its own copy however often ``data/`` is overwritten.

Nothing here changes what the pipelines compute; with no active MLflow run the hooks do nothing.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

import mlflow
from kedro.framework.hooks import hook_impl

from atft_kedro.compare import tracking_uri

log = logging.getLogger(__name__)

#: catalog entries logged as artifacts when the run produced them (artifact folder: the name)
ARTIFACTS = (
    "report",
    "evaluation",
    "predictions",
    "baseline_predictions",
    "validation_predictions",
    "baseline_validation_predictions",
    "interpretation",
    "figures@png",
    "training_metrics",
    "signals",
    "hpo_report",
    "hpo_trials",
    "hpo_comparison",
    "hpo_best_params",
)
#: catalog entries whose outputs are logged when produced under another transcoded name
PRODUCED_AS = {"figures@png": "figures@matplotlib"}
CEILINGS = {
    "oracle": "share_of_oracle",
    "oracle_next": "share_of_next_session_oracle",
    "structural": "share_of_observable_ceiling",
}


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)


def evaluation_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """Flat MLflow metrics of an `evaluation` document (docs/contracts.md), pooled test days."""
    final = evaluation.get("final_model")
    metrics: dict[str, float] = {}
    books = (evaluation.get("book") or {}).get("models", {})
    for label, by_horizon in evaluation.get("models", {}).items():
        for horizon, block in by_horizon.items():
            pooled = block.get("pooled") or {}
            lo, hi = pooled.get("rank_ic_mean_ci95") or (None, None)
            net = ((pooled.get("backtest") or {}).get("quantile") or {}).get("net") or {}
            values = {
                "rank_ic": (pooled.get("rank_ic") or {}).get("mean"),
                "rank_ic_lo": lo,
                "rank_ic_hi": hi,
                "net_sharpe": net.get("sharpe"),
                "jpx_metric": (pooled.get("jpx_metric") or {}).get("score"),
            }
            if horizon == "h1" and label in books:
                values["net_sharpe_controlled"] = books[label]["net"]["sharpe"]
            for name in [label, "final"] if label == final else [label]:
                metrics |= {
                    f"{name}/{horizon}/{k}": float(v) for k, v in values.items() if _finite(v)
                }
    for ceiling, share in CEILINGS.items():
        for horizon in evaluation.get("models", {}).get(final, {}):
            ours, top = (
                metrics.get(f"final/{horizon}/rank_ic"),
                metrics.get(f"{ceiling}/{horizon}/rank_ic"),
            )
            if ours is not None and top:
                metrics[f"final/{horizon}/{share}"] = ours / top
    return metrics


def curve_metrics(training_metrics: dict[str, Any]) -> Iterator[tuple[str, float, int]]:
    """(key, value, epoch) of every epoch's losses and validation metrics, per fold and phase."""
    for record_name, record in training_metrics.items():
        for epoch in record.get("epochs", []):
            step = int(epoch["epoch"])
            for key, value in epoch.items():
                if (key.startswith(("val_", "train_total")) or key == "lr") and _finite(value):
                    yield f"{record_name}/{key}", float(value), step


def data_tags(market: dict[str, Any], seed: int, daily_quotes: Any) -> dict[str, str]:
    """The data a run used: synthetic preset and seed, or real data's dates and row counts."""
    source = str(market.get("source"))
    tags = {"data.source": source}
    if source == "synthetic":
        return tags | {"data.preset": str(market.get("preset")), "data.seed": str(seed)}
    dates = daily_quotes.get_column("Date")
    return tags | {
        "data.first_date": str(dates.min()),
        "data.last_date": str(dates.max()),
        "data.daily_quotes_rows": str(daily_quotes.height),
        "data.codes": str(daily_quotes.get_column("Code").n_unique()),
    }


def run_name(pipeline: str | None, params: dict[str, Any]) -> str:
    """What a run ran: pipeline, market, seed and, when it trains, the phase."""
    pipeline = pipeline or "__default__"
    market = params.get("market") or {}
    source = str(market.get("source", "synthetic"))
    data = f"synthetic {market.get('preset')}" if source == "synthetic" else source
    parts = [pipeline, data, f"seed {params.get('seed')}"]
    if pipeline in ("__default__", "training"):
        parts.append(f"phase {params.get('phase', 'all')}")
    return " | ".join(parts)


def git_tags(project: Path) -> dict[str, str]:
    """The commit the run's code came from, and whether the working tree had changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    return {"git.commit": commit, "git.dirty": str(bool(git("status", "--porcelain")))}


def log_trial(study: Any, trial: Any) -> None:
    """Optuna callback: a finished trial as a run nested under the active one (the HPO run):
    its parameters, the objective, its state (complete, pruned, failed), its pruning curve."""
    if mlflow.active_run() is None:
        return
    with mlflow.start_run(run_name=f"trial {trial.number}", nested=True):
        mlflow.log_params(trial.params)
        mlflow.set_tags(
            {
                "optuna.study": study.study_name,
                "optuna.trial": str(trial.number),
                "optuna.state": trial.state.name,
                "configuration": str(trial.user_attrs.get("configuration", "searched")),
            }
        )
        if trial.value is not None and _finite(trial.value):
            mlflow.log_metric("objective", float(trial.value))
        for step, value in sorted(trial.intermediate_values.items()):
            if _finite(value):
                mlflow.log_metric("intermediate_objective", float(value), step=int(step))


def hpo_summary(best_params: dict[str, Any], comparison: dict[str, Any]) -> tuple[dict, dict]:
    """(params, metrics) of a study's winner and its paired comparison with the default."""
    params = {f"hpo.best.{k}": str(v) for k, v in _flatten(best_params).items()}
    metrics = {f"hpo/{k}": float(v) for k, v in comparison.items() if _finite(v)}
    for key, value in comparison.items():
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(_finite, value)):
            metrics[f"hpo/{key}_lo"], metrics[f"hpo/{key}_hi"] = map(float, value)
    return params, metrics


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out |= _flatten(value, f"{name}.") if isinstance(value, dict) else {name: value}
    return out


class TrackingHooks:
    """Tags, curves, final metrics and artifacts of the active kedro-mlflow run (see module)."""

    def __init__(self) -> None:
        self._tagged = False
        self._user_uri = os.environ.get("MLFLOW_TRACKING_URI")  # a store the user chose
        self._project = Path.cwd()  # until the context names the project
        self._params: dict[str, Any] = {}
        self._name = ""

    @hook_impl(tryfirst=True)  # before kedro-mlflow reads the URI (mlflow.yml leaves it null)
    def after_context_created(self, context: Any) -> None:
        """Point MLflow at the project's SQLite store by absolute path, so a session started
        elsewhere (a notebook in notebooks/, a subfolder) records into the same store."""
        self._project = Path(context.project_path)
        self._params = dict(context.params)
        if not self._user_uri:
            os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(self._project)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._tagged = False
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        self._name = run_name("+".join(n for n in names if n) or None, self._params)

    @hook_impl
    def before_node_run(self) -> None:
        if not self._tagged and mlflow.active_run() is not None:
            mlflow.set_tags(git_tags(self._project) | {"mlflow.runName": self._name})
            self._tagged = True

    @hook_impl
    def after_node_run(self, node: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        if mlflow.active_run() is None:
            return
        if "raw_daily_quotes" in outputs:
            mlflow.set_tags(
                data_tags(
                    inputs["params:market"], inputs["params:seed"], outputs["raw_daily_quotes"]
                )
            )
        if "training_metrics" in outputs:
            for key, value, step in curve_metrics(outputs["training_metrics"]):
                mlflow.log_metric(key, value, step=step)
        if "evaluation" in outputs:
            mlflow.log_metrics(evaluation_metrics(outputs["evaluation"]))
            mlflow.set_tag("final_model", str(outputs["evaluation"].get("final_model")))
            mlflow.set_tag("label", str(outputs["evaluation"].get("label")))
        if "hpo_comparison" in outputs and "hpo_best_params" in outputs:
            params, metrics = hpo_summary(outputs["hpo_best_params"], outputs["hpo_comparison"])
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)

    @hook_impl(tryfirst=True)  # before kedro-mlflow's own hook ends the run
    def after_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        if mlflow.active_run() is None:
            return
        produced = pipeline.all_outputs()
        for name in ARTIFACTS:
            if PRODUCED_AS.get(name, name) not in produced:
                continue
            dataset = catalog.get(name)
            path = Path(getattr(dataset, "_filepath", "") or getattr(dataset, "_path", ""))
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=name.split("@")[0])
            elif path.is_file():
                mlflow.log_artifact(str(path), artifact_path=name.split("@")[0])
