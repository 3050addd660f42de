"""Nodes of the hpo pipeline: run this worker's trials, then summarise the whole (shared) study."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl

from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.hpo.objective import (
    TrialSetup,
    daily_from_trial,
    evaluate_configuration,
    make_objective,
)
from atft_kedro.hpo.report import render_hpo_report
from atft_kedro.hpo.search_space import (
    GRAPH_K,
    apply_values,
    best_fragment,
    default_values,
    parse_space,
)
from atft_kedro.hpo.study import (
    compare_daily,
    open_storage,
    open_study,
    param_importance,
    storage_url,
    trials_table,
)
from atft_kedro.training.fold_training import fit_fold_scaler, selected_folds, trading_calendar
from atft_kedro.training.phases import parse_phase

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "data/06_models/hpo/optuna.db"


def _study(hpo: dict[str, Any], seed: int) -> optuna.Study:
    url = storage_url(hpo.get("storage"), DEFAULT_STORAGE)
    return open_study(
        hpo.get("study_name", "atft_gat_fan"), open_storage(url), seed=seed,
        worker=int(hpo.get("worker", 0)), n_startup_trials=int(hpo.get("n_startup_trials", 5)),
        pruner=hpo.get("pruner"),
    )  # fmt: skip


def _setup(
    features: DayMajorParquet, graph_edges: pl.DataFrame | None, splits: dict[str, Any],
    training: dict[str, Any], hpo: dict[str, Any], graph: dict[str, Any], seed: int,
    horizons: list[int], seq_len: int, work_dir: Path,
) -> TrialSetup:  # fmt: skip
    fold_split = selected_folds(splits, {"folds": [int(hpo.get("fold", 0))]})[0]
    calendar = trading_calendar(features.path)
    scaler = fit_fold_scaler(
        features.path, fold_split, calendar, training.get("scaler") or {}, seed
    )
    (phase,) = parse_phase(hpo.get("phase", 2))
    return TrialSetup(
        features_path=Path(features.path), edges=graph_edges, fold_split=fold_split,
        calendar=calendar, scaler=scaler, training=training, phase=phase, horizons=horizons,
        seq_len=seq_len, seed=seed, work_dir=work_dir, max_epochs=hpo.get("max_epochs"),
        built_k=int(graph.get("k", 20)),
    )  # fmt: skip


def optimise_node(
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    training: dict[str, Any],
    hpo: dict[str, Any],
    graph: dict[str, Any],
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> dict[str, Any]:
    """Run `hpo.n_trials` trials of the shared study in this worker; returns how to reopen it.

    The first worker to find the study empty enqueues the default configuration as a trial, so
    the report can compare the best trial with it on the same days.
    """
    dims = parse_space(hpo["search_space"])
    study = _study(hpo, seed)
    defaults = default_values(training, graph, dims)
    if defaults is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(
            {d.name: d.encode(defaults[d.name]) for d in dims},
            user_attrs={"configuration": "default"},
        )
    with tempfile.TemporaryDirectory(prefix="atft_hpo_") as folder:
        setup = _setup(features, graph_edges, splits, training, hpo, graph, seed, horizons,
                       seq_len, Path(folder))  # fmt: skip
        study.optimize(
            make_objective(setup, dims),
            n_trials=int(hpo.get("n_trials", 20)),
            timeout=hpo.get("timeout_s"),
            gc_after_trial=True,
        )
    return {"study_name": study.study_name, "n_trials_total": len(study.trials)}


def summarise_study_node(
    hpo_study: dict[str, Any],
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    training: dict[str, Any],
    hpo: dict[str, Any],
    graph: dict[str, Any],
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """Trials table, best parameters as a conf fragment, and best vs default day by day.

    The default configuration's daily RankIC comes from its trial; if that trial did not complete
    (pruned or absent) the default configuration is trained here once.
    """
    dims = parse_space(hpo["search_space"])
    study = _study(hpo, seed)
    trials = trials_table(study)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(
            f"hpo study {study.study_name!r}: no completed trial among {len(study.trials)}; "
            "raise hpo.n_trials or relax hpo.pruner"
        )
    best = study.best_trial
    best_values = {d.name: d.decode(best.params[d.name]) for d in dims}
    fragment = best_fragment(training, dims, best_values)
    default_trial = next(
        (t for t in complete if t.user_attrs.get("configuration") == "default"), None
    )
    if default_trial is not None:
        default_daily = daily_from_trial(default_trial)
    else:
        log.info("hpo: the default configuration has no completed trial; training it once")
        with tempfile.TemporaryDirectory(prefix="atft_hpo_") as folder:
            setup = _setup(features, graph_edges, splits, training, hpo, graph, seed, horizons,
                           seq_len, Path(folder))  # fmt: skip
            default_daily = evaluate_configuration(setup, apply_values(training, [], {})).daily
    best_daily = daily_from_trial(best)
    comparison = compare_daily(best_daily, default_daily, np.random.default_rng(seed))
    comparison |= {
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best_values,
        "default_trial": None if default_trial is None else default_trial.number,
        "graph_k_searched": any(d.path == GRAPH_K for d in dims),
        "daily": {
            "best": {"Date": [str(d) for d in best_daily["Date"]],
                     "rank_ic": best_daily["rank_ic"].to_list()},
            "default": {"Date": [str(d) for d in default_daily["Date"]],
                        "rank_ic": default_daily["rank_ic"].to_list()},
        },
    }  # fmt: skip
    log.info(
        "hpo: %d trials (%d complete); best #%d val RankIC %.4f; gap vs default %s CI95 %s",
        len(study.trials), len(complete), best.number, best.value, comparison["gap_mean"],
        comparison["gap_ci95"],
    )  # fmt: skip
    return trials, fragment, comparison


def hpo_report_node(
    hpo_trials: pl.DataFrame, hpo_comparison: dict[str, Any], hpo: dict[str, Any], seed: int
) -> str:
    """The self-contained HTML report of the study."""
    study = _study(hpo, seed)
    importance, note = param_importance(study)

    def frame(block: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame(
            {"Date": pl.Series(block["Date"], dtype=pl.Utf8).str.to_date(),
             "rank_ic": pl.Series(block["rank_ic"], dtype=pl.Float64)}
        )  # fmt: skip

    facts = {
        "study": hpo_comparison["study_name"],
        "trials": hpo_trials.height,
        "completed": hpo_trials.filter(pl.col("state") == "COMPLETE").height,
        "pruned": hpo_trials.filter(pl.col("state") == "PRUNED").height,
        "objective phase": hpo.get("phase", 2),
        "fold": hpo.get("fold", 0),
        "epochs per phase (cap)": hpo.get("max_epochs"),
        "best trial": hpo_comparison["best_trial"],
        "default trial": hpo_comparison["default_trial"],
    }
    return render_hpo_report(
        hpo_trials, importance, note, hpo_comparison,
        frame(hpo_comparison["daily"]["best"]), frame(hpo_comparison["daily"]["default"]), facts,
    )  # fmt: skip
