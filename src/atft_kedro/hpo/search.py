"""A search over the training configuration: this worker's trials, then the study's summary.

``run_trials`` adds ``n_trials`` trials to the shared study (worker 0 enqueues the default
configuration once, so the best trial can be compared with it on the same days).
``summarise`` turns the study into a trials table, the best parameters as a conf fragment, and the
day-by-day comparison of the best trial with the default configuration.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl

from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError
from atft_kedro.hpo.objective import (
    TrialSetup,
    daily_from_trial,
    evaluate_configuration,
    make_objective,
)
from atft_kedro.hpo.search_space import GRAPH_K, Dimension, apply_values, best_fragment
from atft_kedro.hpo.study import compare_daily, open_storage, open_study, storage_url, trials_table
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fit_fold_scaler, selected_folds
from atft_kedro.training.phases import parse_phase

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "data/06_models/hpo/optuna.db"


@dataclass(frozen=True)
class HPOConfig:
    """The `hpo` block (units and meaning in conf/base/parameters_hpo.yml)."""

    study_name: str = "atft_gat_fan"
    storage: str | None = DEFAULT_STORAGE
    worker: int = 0
    n_trials: int = 20
    timeout_s: float | None = None
    phase: int = 2
    fold: int = 0
    max_epochs: int | None = 2
    n_startup_trials: int = 5
    pruner: dict[str, Any] = field(
        default_factory=lambda: {
            "kind": "median",
            "n_startup_trials": 3,
            "n_warmup_steps": 1,
            "interval_steps": 1,
        }
    )
    search_space: dict[str, Any] = field(default_factory=dict)  # conf/base is its only source

    @classmethod
    def from_params(cls, hpo: dict[str, Any]) -> HPOConfig:
        return from_block(cls, hpo, "hpo")


def open_search_study(cfg: HPOConfig, seed: int) -> optuna.Study:
    """The shared study of ``cfg`` with this worker's seeded sampler."""
    url = storage_url(cfg.storage, DEFAULT_STORAGE)
    return open_study(
        cfg.study_name,
        open_storage(url),
        seed=seed,
        worker=int(cfg.worker),
        n_startup_trials=int(cfg.n_startup_trials),
        pruner=cfg.pruner,
    )


@dataclass(frozen=True)
class SearchData:
    """What every trial trains on: the model input, its graph, the splits and the calendar, and
    the label every trial fits."""

    features_path: Path
    graph_edges: pl.DataFrame | None
    splits: dict[str, Any]
    calendar: Sequence[dt.date]
    horizons: Sequence[int]
    seq_len: int
    label: str


def trial_setup(
    data: SearchData,
    training: dict[str, Any],
    cfg: HPOConfig,
    graph_k: int,
    seed: int,
    work_dir: Path,
) -> TrialSetup:
    """The fold, scaler and phase a trial trains and is scored on (``training``, the block the
    search starts from, is parsed here first: a bad key fails before any trial)."""
    base = TrainingConfig.from_params(training, label=data.label, horizons=data.horizons)
    (fold_split,) = selected_folds(data.splits, [int(cfg.fold)])
    scaler = fit_fold_scaler(data.features_path, fold_split, data.calendar, base.scaler, seed)
    (phase,) = parse_phase(cfg.phase)
    return TrialSetup(
        features_path=data.features_path,
        edges=data.graph_edges,
        fold_split=fold_split,
        calendar=data.calendar,
        scaler=scaler,
        training=training,
        label=data.label,
        phase=phase,
        horizons=list(data.horizons),
        seq_len=data.seq_len,
        seed=seed,
        work_dir=work_dir,
        max_epochs=cfg.max_epochs,
        built_k=int(graph_k),
    )


def run_trials(
    study: optuna.Study,
    make_setup: Callable[[], TrialSetup],
    dims: list[Dimension],
    cfg: HPOConfig,
    defaults: dict[str, Any] | None,
    *,
    callbacks: Sequence[Callable] = (),
) -> dict[str, Any]:
    """Add ``cfg.n_trials`` trials to ``study``; returns how to reopen it. ``callbacks`` are
    Optuna's (called with the study and each finished trial, e.g. to track it).

    Worker 0 enqueues ``defaults`` (the configured values of the dimensions) as a trial when the
    study has none yet, so the best trial can be compared with the default on the same days. Only
    worker 0 does: workers started together would otherwise race on an empty study.
    """
    has_default = any(
        t.user_attrs.get("configuration") == "default" for t in study.get_trials(deepcopy=False)
    )
    if defaults is not None and cfg.worker == 0 and not has_default:
        study.enqueue_trial(
            {d.name: d.encode(defaults[d.name]) for d in dims},
            user_attrs={"configuration": "default"},
        )
    setup = make_setup()
    _check_graph_k(dims, setup.built_k)
    study.optimize(
        make_objective(setup, dims),
        n_trials=int(cfg.n_trials),
        timeout=cfg.timeout_s,
        gc_after_trial=True,
        callbacks=list(callbacks),
    )
    return {"study_name": study.study_name, "n_trials_total": len(study.trials)}


def _check_graph_k(dims: list[Dimension], built_k: int | None) -> None:
    """A searched graph.k above the k the graph was built with fails before any trial runs."""
    for d in dims:
        largest = max(d.choices) if d.type == "categorical" else d.bounds[1]
        if d.path == GRAPH_K and built_k is not None and largest > built_k:
            raise ParameterError(
                f"hpo.search_space.{d.name}: graph.k up to {largest:g} but the graph was built "
                f"with k={built_k}; lower the range or rebuild with `kedro run --pipeline graph "
                f"--params graph.k={largest:g}`"
            )


def _default_daily(
    complete: list[optuna.trial.FrozenTrial],
    training: dict[str, Any],
    default_setup: Callable[[], TrialSetup],
) -> tuple[optuna.trial.FrozenTrial | None, pl.DataFrame]:
    """The default configuration's completed trial (None when it has none) and its daily RankIC:
    the trial's, else from training the default configuration once on ``default_setup()``."""
    default_trial = next(
        (t for t in complete if t.user_attrs.get("configuration") == "default"), None
    )
    if default_trial is not None:
        return default_trial, daily_from_trial(default_trial)
    log.info("hpo: the default configuration has no completed trial; training it once")
    default_daily = evaluate_configuration(default_setup(), apply_values(training, [], {})).daily
    return default_trial, default_daily


def summarise(
    study: optuna.Study,
    dims: list[Dimension],
    training: dict[str, Any],
    default_setup: Callable[[], TrialSetup],
    seed: int,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """(trials table, best parameters as a conf fragment, best vs default day by day).

    The default configuration's daily RankIC comes from its trial; when that trial did not
    complete (pruned or absent) the default configuration is trained once on ``default_setup()``.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(
            f"hpo study {study.study_name!r}: no completed trial among {len(study.trials)}; "
            "raise hpo.n_trials or relax hpo.pruner"
        )
    best = study.best_trial
    best_values = {d.name: d.decode(best.params[d.name]) for d in dims}
    default_trial, default_daily = _default_daily(complete, training, default_setup)
    best_daily = daily_from_trial(best)
    comparison = compare_daily(best_daily, default_daily, np.random.default_rng(seed)) | {
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best_values,
        "default_trial": None if default_trial is None else default_trial.number,
        "graph_k_searched": any(d.path == GRAPH_K for d in dims),
        "daily": {
            name: {"Date": [str(d) for d in daily["Date"]], "rank_ic": daily["rank_ic"].to_list()}
            for name, daily in (("best", best_daily), ("default", default_daily))
        },
    }
    log.info(
        "hpo: %d trials (%d complete); best #%d val RankIC %.4f; gap vs default %s CI95 %s",
        len(study.trials),
        len(complete),
        best.number,
        best.value,
        comparison["gap_mean"],
        comparison["gap_ci95"],
    )
    return trials_table(study), best_fragment(training, dims, best_values), comparison
