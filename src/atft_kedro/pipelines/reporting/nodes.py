"""Nodes of the reporting pipeline: catalog objects in, one `atft_kedro.evaluation` (or inference)
call each, predictions, evaluation JSON, figures and the HTML report out."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import torch
from matplotlib.figure import Figure

from atft_kedro.datasets import DayMajorParquet
from atft_kedro.evaluation.attribution import effect_rank_ic
from atft_kedro.evaluation.baselines import baseline_predictions
from atft_kedro.evaluation.evaluate import EvaluationConfig, evaluation_document, json_safe
from atft_kedro.evaluation.figures import FIGURES, report_figures
from atft_kedro.evaluation.predictions import final_label, predictions_by_model
from atft_kedro.evaluation.realism import PUBLISHED_BAND, realism_message
from atft_kedro.evaluation.report import (
    SavesFigure,
    describe_data,
    render_report,
    report_tables,
    universe_message,
    verdict,
)
from atft_kedro.evaluation.selection import chosen_phases, validation_choice
from atft_kedro.evaluation.turnover import BookConfig
from atft_kedro.evaluation.views import label_columns
from atft_kedro.features.labels import check_label, target_name
from atft_kedro.graph import GraphConfig
from atft_kedro.graph.peers import group_peer_table, peer_returns
from atft_kedro.graph.stats import cluster_recovery
from atft_kedro.inference.predict import predict_folds
from atft_kedro.loader.day_graph import edges_file
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_data import input_columns


def predict_folds_node(
    *,
    model_input: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    scalers: dict[str, Any],
    checkpoints: CheckpointStore,
    training_metrics: Mapping[str, Any],
    reporting: dict[str, Any],
    horizons: list[int],
    seq_len: int,
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Predictions of every trained (fold, phase) on its fold's test dates, of each fold's final
    phase (chosen on validation RankIC in ``training_metrics``) on its validation dates, and the
    final phase's interpretation."""
    torch.set_num_threads(int(reporting.get("threads") or 1))
    folds = [int(f["fold"]) for f in splits["folds"]]
    chosen = chosen_phases(validation_choice(training_metrics, folds))
    with tempfile.TemporaryDirectory(prefix="atft_report_") as folder:
        predictions, validation, interpretation = predict_folds(
            model_input.path,
            edges_file(graph_edges, Path(folder)),
            splits,
            scalers,
            checkpoints,
            horizons=horizons,
            seq_len=int(seq_len),
            seed=int(seed),
            validation_phases={fold: [phase] for fold, phase in chosen.items()},
        )
    return predictions, validation, json_safe(interpretation)


def cluster_peers_node(
    panel: pl.DataFrame, latent_clusters: pl.DataFrame, graph: dict[str, Any]
) -> pl.DataFrame:
    """The peer family built from the true latent clusters instead of the graph (synthetic market
    only; empty for real data), with the graph's return residualisation. Evaluation only."""
    if latent_clusters is None or latent_clusters.height == 0:
        return pl.DataFrame(schema={"Date": pl.Date, "Code": pl.Utf8})
    config = GraphConfig.from_params(graph)
    returns = peer_returns(panel, config.residualize, config.beta_window)
    return group_peer_table(returns, latent_clusters)


def graph_quality_node(
    graph_edges: pl.DataFrame,
    peer_features: pl.DataFrame,
    cluster_peers: pl.DataFrame,
    latent_clusters: pl.DataFrame,
) -> pl.DataFrame:
    """Per date, how well the graph finds the latent clusters (empty for real data)."""
    if latent_clusters is None or latent_clusters.height == 0:
        return pl.DataFrame(schema={"Date": pl.Date})
    return cluster_recovery(graph_edges, peer_features, cluster_peers, latent_clusters)


def baseline_predictions_node(
    *,
    model_input: DayMajorParquet,
    splits: dict[str, Any],
    oracle_alpha: pl.DataFrame,
    cluster_peer_features: pl.DataFrame,
    reporting: dict[str, Any],
    label: str,
    model_inputs: list[str] | None,
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every baseline of ``reporting.baselines`` (and the synthetic market's ceilings), fitted
    once per fold to the global ``label``, on every fold's test dates and on its validation dates,
    for the reported horizons (``reporting.horizons``); ``model_inputs``: the families the
    network reads (``training.inputs``, for ``inputs_ridge``)."""
    horizons = [int(h) for h in reporting["horizons"]]
    names, masks = input_columns(model_input.columns)
    targets = [pl.col(target_name(h, check_label(label))).alias(f"target_{h}d") for h in horizons]
    table = model_input.read(
        ["Date", "Code", *names, *masks, *[target_name(h, label) for h in horizons]]
    ).with_columns(targets)
    tables = baseline_predictions(
        table,
        splits,
        reporting["baselines"],
        [*names, *masks],
        horizons,
        seed=int(seed),
        oracle_alpha=oracle_alpha,
        cluster_peers=cluster_peer_features,
        label=label,
        model_inputs=model_inputs,
        max_train_rows=int(reporting["max_train_rows"]),
        n_threads=int(reporting.get("threads") or 1),
    )
    return tables["test"], tables["val"]


def evaluate_node(
    *,
    predictions: pl.DataFrame,
    baseline_predictions: pl.DataFrame,
    validation_predictions: pl.DataFrame,
    baseline_validation_predictions: pl.DataFrame,
    model_input: DayMajorParquet,
    panel: pl.DataFrame,
    training_metrics: Mapping[str, Any],
    alpha_components: pl.DataFrame,
    reporting: dict[str, Any],
    label: str,
    seed: int,
) -> dict[str, Any]:
    """The `evaluation` JSON (docs/contracts.md; docs/design.md, Evaluation), headline under the global
    ``label``; the final model is each fold's phase with the best validation RankIC, and each
    model's turnover control is chosen on its validation predictions."""
    horizons = [int(h) for h in reporting["horizons"]]
    choice = validation_choice(training_metrics, predictions["fold"].unique().to_list())
    by_model = predictions_by_model(
        predictions, baseline_predictions, reporting["baselines"], choice=choice
    )
    validation = predictions_by_model(
        validation_predictions,
        baseline_validation_predictions,
        reporting["baselines"],
        choice=choice,
    )
    labels = model_input.read(["Date", "Code", "ret_1d", *label_columns(horizons)])
    band = tuple(reporting.get("published_band") or PUBLISHED_BAND)
    document = evaluation_document(
        by_model,
        labels,
        panel.select("Date", "Code", "close"),
        horizons,
        EvaluationConfig.from_params(reporting, seed),
        band,
        check_label(label),
        validation=validation,
        book=BookConfig.from_params(reporting.get("book")),
    )
    document |= {"final_model": final_label(predictions), "final_choice": choice}
    if alpha_components is not None and alpha_components.height:
        oracle = "oracle" if label == "close" else "oracle_next"
        document["attribution"] = json_safe(
            effect_rank_ic(
                by_model, alpha_components, label, int(reporting.get("min_stocks", 10)), oracle
            )
        )
    return document


def figures_node(
    *,
    predictions: pl.DataFrame,
    baseline_predictions: pl.DataFrame,
    evaluation: dict[str, Any],
    interpretation: dict[str, Any],
    graph_stats: pl.DataFrame,
    graph_quality: pl.DataFrame,
    training_metrics: dict[str, Any],
    reporting: dict[str, Any],
    seed: int,
) -> dict[str, Figure]:
    """The report figures, {file name: Figure} (names and captions in ``evaluation.figures``)."""
    by_model = predictions_by_model(
        predictions,
        baseline_predictions,
        reporting["baselines"],
        choice=evaluation.get("final_choice"),
    )
    run = {
        "interpretation": interpretation,
        "graph_stats": graph_stats,
        "graph_quality": graph_quality,
        "training_metrics": training_metrics,
    }
    cfg = EvaluationConfig.from_params(reporting, seed)
    return report_figures(by_model, evaluation, run, cfg, int(reporting["horizons"][0]))


class _PNG:
    """A stored PNG that `render_report` embeds like a Figure (it only calls ``savefig``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def savefig(self, buffer: Any, **_: Any) -> None:
        buffer.write(self.data)


def report_node(
    evaluation: dict[str, Any],
    figures: Mapping[str, Callable[[], bytes] | bytes | Figure],
    model_input: DayMajorParquet,
    graph_quality: pl.DataFrame,
    splits: dict[str, Any],
    reporting: dict[str, Any],
) -> str:
    """The self-contained HTML report: verdict, tables with CI95, data, figures, definitions.

    ``figures``: the saved PNGs by file name (a PartitionedDataset's loaders, bytes or Figures).
    """
    horizons = [int(h) for h in reporting["horizons"]]
    names, masks = input_columns(model_input.columns)
    description = describe_data(model_input.read(["Date", "Code"]), splits, [*names, *masks])
    embedded: dict[str, SavesFigure] = {}
    for name, caption in FIGURES.items():
        key = next((k for k in figures if k == name or f"{k}.png" == name), None)
        if key is not None:
            stored = figures[key]
            figure = stored() if callable(stored) else stored
            embedded[caption] = _PNG(figure) if isinstance(figure, bytes) else figure
    return render_report(
        report_tables(evaluation, horizons, graph_quality),
        embedded,
        description,
        verdict(evaluation, evaluation.get("final_model"), horizons[0]),
        title=f"ATFT-GAT-FAN evaluation (costs {evaluation['config']['cost_bps']} bps on turnover)",
        warnings=[
            realism_message(evaluation.get("realism") or {}),
            universe_message(evaluation.get("universe_check") or {}),
        ],
    )
