"""The report's figures: which ones, their captions, and how each is drawn from the run's outputs.

``report_figures`` turns the predictions, the evaluation JSON, the interpretation, the graph
statistics and the training metrics into ``{file name: Figure}``; ``FIGURES`` holds the captions
in report order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from atft_kedro.evaluation import plots
from atft_kedro.evaluation.baselines import BASELINES
from atft_kedro.evaluation.evaluate import EvaluationConfig, daily_series
from atft_kedro.evaluation.interpretation import group_rows
from atft_kedro.evaluation.report import all_views
from atft_kedro.evaluation.views import VIEW_TITLES

#: File name → caption of each report figure, in report order.
FIGURES = {
    "cumulative_long_short.png": "Cumulative long-short return under the label (by default "
    "next-session entry), top/bottom quantile, equal weight (solid gross, dashed net of costs), "
    "pooled test days",
    "rolling_rank_ic.png": "Rolling 20-day mean of the daily RankIC on test days",
    "decile_returns.png": "Mean realised return by prediction decile (pooled test days)",
    "fan_window_weights.png": "FAN: learned weight of each normalisation window (and of the raw "
    "pass-through, when present), per feature family",
    "san_slice_weights.png": "SAN: effective weight of each slice of the input window "
    "(π_k·|γ_k|), per feature family",
    "variable_selection.png": "Variable-selection importance: mean softmax weight per input",
    "gat_attention.png": "GAT attention on same-sector33 edges vs other edges",
    "graph_statistics.png": "Correlation graph over time",
    "graph_clusters.png": "Synthetic market only: share of graph edges inside a latent cluster "
    "(in_cluster_random: what random pairs give) and correlation across stocks of the graph's "
    "peer_ret_1d with the same feature built from the true clusters",
    "training_curves.png": "Training per fold and phase: loss and validation RankIC per epoch "
    "(epochs counted on across the phases of a fold)",
    "tradable_views.png": "Mean daily RankIC (CI95) per model under each view: next-session close "
    "(JPX, the default label), close to close (same close, not tradable), next-session open, "
    "investable universe",
    "universe_size.png": "Stocks with a row and stocks in the investable universe, per test day",
}
GRAPH_STAT_COLUMNS = (
    "nodes",
    "mean_degree",
    "isolated_nodes",
    "components",
    "same_sector33_share",
    "sector33_modularity",
)


def report_figures(
    by_model: Mapping[str, pl.DataFrame],
    evaluation: Mapping[str, Any],
    run: Mapping[str, Any],
    cfg: EvaluationConfig,
    h: int,
) -> dict[str, Figure]:
    """The report figures, {file name: Figure} (names and captions in ``FIGURES``).

    ``by_model``: {label: predictions} (``predictions_by_model``); ``run``: the run's other
    outputs, ``interpretation``, ``graph_stats``, ``graph_quality`` and ``training_metrics``.
    """
    final = evaluation["final_model"]
    phases = [label for label in by_model if label not in BASELINES]
    baselines = [label for label in by_model if label not in phases]
    daily = daily_series(by_model, [h], cfg)
    ls = {"gross": "quantile_gross", "net": "quantile_net"}
    figures = {
        "cumulative_long_short.png": plots.cumulative_returns(
            _per_model(daily, [final, *baselines], ls), f"Long-short cumulative return (h={h})"
        ),
        "rolling_rank_ic.png": plots.rolling_rank_ic(
            _per_model(daily, [*phases, *baselines], {"rank_ic": "rank_ic"}), 20
        ),
        "decile_returns.png": plots.decile_bars(
            _deciles(evaluation, h, [final, *baselines]), f"Mean target_{h}d by prediction decile"
        ),
        **interpretation_figures(run["interpretation"]),
        **graph_figures(run["graph_stats"], run["graph_quality"]),
        "training_curves.png": plots.training_curves(training_history(run["training_metrics"])),
        "tradable_views.png": plots.view_rank_ic(
            view_values(evaluation, h, [final, *baselines]), f"RankIC by view, h = {h}"
        ),
        "universe_size.png": plots.universe_size(_universe(evaluation)),
    }
    return {name: figures[name] for name in FIGURES}


def _per_model(
    daily: pl.DataFrame, labels: list[str], columns: dict[str, str]
) -> dict[str, pl.DataFrame]:
    """{label: Date and ``columns`` (renamed {new: daily column})} of each model's daily series."""
    return {
        label: daily.filter(pl.col("model") == label).select(
            "Date", *(pl.col(src).alias(dst) for dst, src in columns.items())
        )
        for label in labels
    }


def _deciles(evaluation: Mapping[str, Any], h: int, labels: list[str]) -> dict[str, Any]:
    """{label: pooled decile record at horizon ``h``} of the models evaluated at ``h``."""
    models = evaluation["models"]
    return {
        label: models[label][f"h{h}"]["pooled"]["deciles"]
        for label in labels
        if f"h{h}" in models.get(label, {})
    }


def graph_figures(graph_stats: pl.DataFrame, graph_quality: pl.DataFrame) -> dict[str, Figure]:
    """The graph's daily statistics and its agreement with the latent clusters (an empty figure
    on real data, which has none)."""
    stats = graph_stats.select("Date", *[c for c in GRAPH_STAT_COLUMNS if c in graph_stats.columns])
    return {
        "graph_statistics.png": plots.graph_statistics(stats),
        "graph_clusters.png": (
            plots.graph_statistics(graph_quality, "Graph vs the latent clusters")
            if graph_quality.height
            else plots.empty_figure(
                "Graph vs the latent clusters", "no latent clusters (real data)"
            )
        ),
    }


def _universe(evaluation: Mapping[str, Any]) -> pl.DataFrame:
    """Date (pl.Date), stocks, investable: the universe's daily size (empty when not recorded)."""
    return pl.DataFrame(
        evaluation.get("universe") or {"Date": [], "stocks": [], "investable": []}
    ).with_columns(pl.col("Date").cast(pl.Utf8).str.to_date())


def training_history(training_metrics: Mapping[str, Any]) -> dict[str, pl.DataFrame]:
    """{"fold f phase p": epoch, train_loss, val_loss, val_rank_ic} from the per-phase records.

    Epochs run on across the phases of a fold (phase p starts where phase p-1 ended), so the
    curves of one fold read left to right as training went.
    """
    records = [r() if callable(r) else r for r in training_metrics.values()]
    records.sort(key=lambda r: (r.get("fold", 0), r.get("phase", 0)))
    out, offset, fold = {}, 0, None
    for record in records:
        if record.get("fold") != fold:
            offset, fold = 0, record.get("fold")
        horizon = record.get("early_stop_horizon", 1)
        rows = [
            {
                "epoch": offset + e["epoch"],
                "train_loss": e.get("train_total"),
                "val_loss": e.get("val_loss"),
                "val_rank_ic": e.get(f"val_rank_ic_{horizon}d"),
            }
            for e in record.get("epochs", [])
        ]
        if rows:
            offset = rows[-1]["epoch"]
            label = f"fold {fold} phase {record.get('phase')}"
            out[label] = pl.DataFrame(
                rows,
                schema={
                    "epoch": pl.Int64,
                    "train_loss": pl.Float64,
                    "val_loss": pl.Float64,
                    "val_rank_ic": pl.Float64,
                },
            )
    return out


def interpretation_figures(interpretation: Mapping[str, Any]) -> dict[str, Figure]:
    groups = interpretation.get("groups", [])
    figures = {}
    fan = interpretation.get("fan")
    if fan:
        names, weights = group_rows(fan["weights"], groups)
        figures["fan_window_weights.png"] = plots.fan_window_weights(weights, names, fan["windows"])
    else:
        figures["fan_window_weights.png"] = plots.empty_figure("FAN window weights", "FAN off")
    san = interpretation.get("san")
    if san:
        names, weights = group_rows(san["feature_slice_weights"], groups)
        figures["san_slice_weights.png"] = plots.san_slice_weights(weights, names)
    else:
        figures["san_slice_weights.png"] = plots.empty_figure("SAN slice weights", "SAN off")
    figures["variable_selection.png"] = plots.variable_importance(
        interpretation.get("vsn_importance", {})
    )
    gat = interpretation.get("gat")
    figures["gat_attention.png"] = (
        plots.gat_attention_by_edge_type(gat["same_sector"]["sample"], gat["other"]["sample"])
        if gat
        else plots.empty_figure("GAT attention by edge type", "GAT off")
    )
    return figures


def view_values(evaluation: Mapping[str, Any], h: int, labels: list[str]) -> dict[str, dict]:
    """{label: {view title: (RankIC, CI95)}} at horizon h, pooled test days."""
    views = all_views(evaluation)
    out: dict[str, dict] = {}
    for label in labels:
        out[label] = {}
        for view, title in VIEW_TITLES.items():
            block = views.get(view, {}).get(label, {}).get(f"h{h}", {}).get("pooled")
            if block:
                out[label][title] = (block["rank_ic"]["mean"], block["rank_ic_mean_ci95"])
    return out
