"""Nodes of the hpo pipeline: run this worker's trials, then summarise the whole (shared) study."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from atft_kedro.datasets.parquet import DayMajorParquet
from atft_kedro.hpo.report import render_hpo_report
from atft_kedro.hpo.search import (
    HPOConfig,
    SearchData,
    open_search_study,
    run_trials,
    summarise,
    trial_setup,
)
from atft_kedro.hpo.search_space import default_values, parse_space
from atft_kedro.hpo.study import param_importance
from atft_kedro.pipelines.tracking import log_trial
from atft_kedro.training.fold_data import trading_calendar


def _data(
    features: DayMajorParquet,
    graph_edges: pl.DataFrame | None,
    splits: dict[str, Any],
    horizons: list[int],
    seq_len: int,
    label: str,
) -> SearchData:
    return SearchData(
        Path(features.path),
        graph_edges,
        splits,
        trading_calendar(features.path),
        list(horizons),
        int(seq_len),
        label,
    )


def optimise_node(
    *,
    model_input: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    training: dict[str, Any],
    label: str,
    hpo: dict[str, Any],
    graph: dict[str, Any],
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> dict[str, Any]:
    """Run `hpo.n_trials` trials of the shared study in this worker (each scored on the validation
    RankIC of the global `label`); returns how to reopen it."""
    cfg = HPOConfig.from_params(hpo)
    dims = parse_space(cfg.search_space)
    study = open_search_study(cfg, seed)
    data = _data(model_input, graph_edges, splits, horizons, seq_len, label)
    with tempfile.TemporaryDirectory(prefix="atft_hpo_") as folder:
        return run_trials(
            study,
            lambda: trial_setup(data, training, cfg, int(graph["k"]), seed, Path(folder)),
            dims,
            cfg,
            default_values(training, graph, dims),
            callbacks=[log_trial],
        )


def summarise_study_node(
    *,
    hpo_study: dict[str, Any],
    model_input: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    training: dict[str, Any],
    label: str,
    hpo: dict[str, Any],
    graph: dict[str, Any],
    seed: int,
    horizons: list[int],
    seq_len: int,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """Trials table, best parameters as a conf fragment, and best vs default day by day.
    ``hpo_study`` (the optimise node's output) only orders this node after it."""
    cfg = HPOConfig.from_params(hpo)
    data = _data(model_input, graph_edges, splits, horizons, seq_len, label)
    with tempfile.TemporaryDirectory(prefix="atft_hpo_") as folder:
        return summarise(
            open_search_study(cfg, seed),
            parse_space(cfg.search_space),
            training,
            lambda: trial_setup(data, training, cfg, int(graph["k"]), seed, Path(folder)),
            seed,
        )


def hpo_report_node(
    hpo_trials: pl.DataFrame, hpo_comparison: dict[str, Any], hpo: dict[str, Any], seed: int
) -> str:
    """The self-contained HTML report of the study."""
    cfg = HPOConfig.from_params(hpo)
    importance, note = param_importance(open_search_study(cfg, seed))

    def frame(block: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "Date": pl.Series(block["Date"], dtype=pl.Utf8).str.to_date(),
                "rank_ic": pl.Series(block["rank_ic"], dtype=pl.Float64),
            }
        )

    facts = {
        "study": hpo_comparison["study_name"],
        "trials": hpo_trials.height,
        "completed": hpo_trials.filter(pl.col("state") == "COMPLETE").height,
        "pruned": hpo_trials.filter(pl.col("state") == "PRUNED").height,
        "objective phase": cfg.phase,
        "fold": cfg.fold,
        "epochs per phase (cap)": cfg.max_epochs,
        "best trial": hpo_comparison["best_trial"],
        "default trial": hpo_comparison["default_trial"],
    }
    return render_hpo_report(
        hpo_trials,
        importance,
        note,
        hpo_comparison,
        best_daily=frame(hpo_comparison["daily"]["best"]),
        default_daily=frame(hpo_comparison["daily"]["default"]),
        study_facts=facts,
    )
