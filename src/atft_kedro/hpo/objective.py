"""The objective of a trial: train a configuration on one fold, score its validation RankIC.

A trial trains the phases 0 … `phase` of one walk-forward fold with `train_fold` (phase n starts
from phase n−1's best checkpoint, as in the training pipeline) into a throw-away checkpoint folder.
Its value is the best mean daily validation RankIC of the last phase at the early-stopping horizon:
the number the training pipeline itself uses to pick `best`. After every epoch the running value
is reported to Optuna (step = epochs so far over all phases) so that the pruner can stop a trial
that falls below the median of earlier trials at the same step.

The daily validation RankIC of the best checkpoint (from `atft_kedro.evaluation.metrics`) is kept
with the trial, so the best trial and the default configuration can be compared day by day on the
same validation days without retraining either.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import polars as pl

from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.evaluation.predictions import pred_col, target_col
from atft_kedro.hpo.graph_k import top_k_edges
from atft_kedro.hpo.search_space import GRAPH_K, Dimension, apply_values, suggest
from atft_kedro.inference.predict import predict_days
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fold_data
from atft_kedro.training.fold_training import TrainingRun, train_fold

log = logging.getLogger(__name__)


@dataclass
class TrialSetup:
    """What every trial of a study shares: the data of one fold and the base configuration."""

    features_path: Path
    edges: pl.DataFrame | None  # graph_edges as built (k = graph.k), or None without a graph
    fold_split: dict[str, Any]
    calendar: Sequence[dt.date]
    scaler: OnlineRobustScaler
    training: dict[str, Any]  # the `training` block the search edits (dimensions are its paths)
    label: str  # the global `label` every trial fits
    phase: int  # the phase whose validation RankIC is the objective
    horizons: Sequence[int]
    seq_len: int
    seed: int
    work_dir: Path  # scratch space for sub-sampled graphs and trial checkpoints
    max_epochs: int | None = None  # cap on each phase's epochs during the search
    built_k: int | None = None  # k the edges were built with (a larger searched k is an error)
    _edge_files: dict[int | None, Path | None] = field(default_factory=dict, repr=False)

    def edges_file(self, k: int | None) -> Path | None:
        """A Date-sorted Parquet of the graph with `k` neighbours per node (None: as built)."""
        if self.edges is None:
            return None
        if k is not None and self.built_k is not None and k > self.built_k:
            raise ValueError(
                f"hpo: graph.k={k} exceeds the k={self.built_k} the graph was built with; "
                f"rebuild with `kedro run --pipeline graph --params graph.k={k}` or lower the range"
            )
        if k not in self._edge_files:
            table = self.edges if k is None else top_k_edges(self.edges, k)
            path = self.work_dir / f"graph_edges_k{k if k is not None else 'built'}.parquet"
            table.sort("Date", maintain_order=True).write_parquet(path, row_group_size=100_000)
            self._edge_files[k] = path
        return self._edge_files[k]


@dataclass
class Evaluation:
    """A trained configuration's score and its daily validation RankIC."""

    value: float | None  # best mean val RankIC of the objective phase (trainer's definition)
    daily: pl.DataFrame  # Date, rank_ic (best checkpoint of the objective phase, from evaluation)
    records: dict[str, dict[str, Any]]  # train_fold's metrics records


def trial_config(setup: TrialSetup, training: dict[str, Any]) -> TrainingConfig:
    """A trial's `training` block parsed (the run's label and horizons): the setup's fold only,
    no progress bar, every phase's epochs capped at `max_epochs`."""
    cfg = TrainingConfig.from_params(training, label=setup.label, horizons=setup.horizons)
    phases = cfg.phases
    if setup.max_epochs is not None:
        phases = {
            p: dataclasses.replace(spec, epochs=min(spec.epochs, setup.max_epochs))
            for p, spec in phases.items()
        }
    fold = int(setup.fold_split["fold"])
    return dataclasses.replace(cfg, progress_bar=False, folds=(fold,), phases=phases)


def evaluate_configuration(
    setup: TrialSetup,
    training: dict[str, Any],
    k: int | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> Evaluation:
    """Train phases 0 … `setup.phase` with `training` and the k-neighbour graph; score the last."""
    cfg = trial_config(setup, training)
    job = TrainingRun(cfg, tuple(range(setup.phase + 1)), setup.seed, setup.seq_len)
    data = fold_data(
        setup.features_path,
        setup.edges_file(k),
        setup.fold_split,
        setup.calendar,
        setup.scaler,
        cfg,
        seq_len=setup.seq_len,
        seed=setup.seed,
    )
    fold = int(setup.fold_split["fold"])
    with tempfile.TemporaryDirectory(dir=setup.work_dir, prefix="trial_") as folder:
        store = CheckpointStore(Path(folder))
        records = train_fold(data, job, store, on_epoch_end=on_epoch_end)
        state = store.load(fold, setup.phase, "best")
    model = ATFTGATFAN(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model_state"])
    preds = predict_days(
        model, data.val, setup.horizons, model.cfg.quantiles, fold=fold, phase=setup.phase
    )
    h = cfg.early_stop_horizon
    daily = daily_ic(preds, pred_col(h), target_col(h), cfg.min_stocks_per_day)
    record = records[f"fold{fold}_phase{setup.phase}"]
    return Evaluation(record["best_val_rank_ic"], daily.table.select("Date", "rank_ic"), records)


def make_objective(setup: TrialSetup, dims: list[Dimension]) -> Callable[[optuna.Trial], float]:
    """Optuna objective: sample a configuration, train it with per-epoch pruning, return RankIC."""

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, dims)
        k = next((int(values[d.name]) for d in dims if d.path == GRAPH_K), None)
        step = 0

        def report(metrics: dict[str, Any]) -> None:
            nonlocal step
            value = metrics.get("val_mean_rank_ic")
            if value is not None:
                trial.report(float(value), step)
            step += 1
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {step} epochs at val RankIC {value}")

        result = evaluate_configuration(
            setup, apply_values(setup.training, dims, values), k, report
        )
        trial.set_user_attr("val_dates", [d.isoformat() for d in result.daily["Date"]])
        trial.set_user_attr("val_rank_ic", result.daily["rank_ic"].to_list())
        trial.set_user_attr(
            "phase_rank_ic", {key: r["best_val_rank_ic"] for key, r in result.records.items()}
        )
        if result.value is None:
            raise optuna.TrialPruned("no finite validation RankIC (too few stocks per day?)")
        return float(result.value)

    return objective


def daily_from_trial(trial: optuna.trial.FrozenTrial) -> pl.DataFrame:
    """The daily validation RankIC a trial stored (Date, rank_ic); empty if it stored none."""
    dates = trial.user_attrs.get("val_dates") or []
    return pl.DataFrame(
        {
            "Date": pl.Series(dates, dtype=pl.Utf8).str.to_date(),
            "rank_ic": pl.Series(trial.user_attrs.get("val_rank_ic") or [], dtype=pl.Float64),
        }
    )
