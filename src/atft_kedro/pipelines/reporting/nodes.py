"""Nodes of the reporting pipeline: checkpoints and features in, `atft_kedro.evaluation` calls,
predictions, evaluation JSON, figures and the HTML report out."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
import torch
from matplotlib.figure import Figure

from atft_kedro.datasets import DayMajorParquet
from atft_kedro.evaluation import plots
from atft_kedro.evaluation.baselines import CEILINGS, baseline_inputs, fit_predict_baseline
from atft_kedro.evaluation.evaluate import EvaluationConfig, daily_series, evaluate, json_safe
from atft_kedro.evaluation.interpretation import InterpretationCollector, group_rows
from atft_kedro.evaluation.predictions import model_label, split_by_model
from atft_kedro.evaluation.realism import (
    PUBLISHED_BAND,
    realism_check,
    realism_message,
    reversal_rank_ic,
    unchanged_close_share,
)
from atft_kedro.evaluation.report import (
    describe_data,
    realism_rows,
    render_report,
    summary_rows,
    universe_rows,
    verdict,
    view_rows,
)
from atft_kedro.evaluation.views import VIEW_TITLES, label_columns, universe_size, views_of
from atft_kedro.features.model_input import with_peer_features
from atft_kedro.graph import GraphConfig
from atft_kedro.graph.peers import group_peer_table, peer_returns
from atft_kedro.graph.stats import cluster_recovery
from atft_kedro.loader.datasets import day_loader
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_training import dates_between, input_columns, trading_calendar
from atft_kedro.training.inference import (
    MODEL_NAME,
    day_dataset,
    edges_file,
    load_phase_model,
    predict_days,
    trained_phases,
)

log = logging.getLogger(__name__)


# File name → caption of each report figure, in report order.
FIGURES = {
    "cumulative_long_short.png": "Cumulative long-short return, top/bottom quantile, equal "
    "weight (solid gross, dashed net of costs), pooled test days",
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
    "tradable_views.png": "Mean daily RankIC (CI95) per model under each view: close to close, "
    "next-session close (JPX), next-session open, investable universe",
    "universe_size.png": "Stocks with a row and stocks in the investable universe, per test day",
}
GRAPH_STAT_COLUMNS = ("nodes", "mean_degree", "isolated_nodes", "components",
                      "same_sector33_share", "sector33_modularity")  # fmt: skip


# ---- nodes --------------------------------------------------------------------------------------


def predict_test_node(
    features: DayMajorParquet,
    graph_edges: pl.DataFrame,
    splits: dict[str, Any],
    scalers: dict[str, Any],
    checkpoints: CheckpointStore,
    training_metrics: Mapping[str, Any],
    reporting: dict[str, Any],
    horizons: list[int],
    seq_len: int,
    seed: int,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Predictions of every trained (fold, phase) `best` model on its fold's test dates, and the
    final phase's interpretation averaged over those dates.

    Each fold uses its own scaler (fitted on its training dates). ``training_metrics`` is not read:
    it is the training pipeline's output, so it makes Kedro run this node after training (the
    checkpoint store is written during training, not returned by it).
    Returns (predictions, interpretation).
    """
    torch.set_num_threads(int(reporting.get("threads") or 1))
    folds = [int(f["fold"]) for f in splits["folds"] if f"fold{f['fold']}" in scalers]
    phases = trained_phases(checkpoints, folds)
    if not phases:
        raise FileNotFoundError(
            f"reporting: no `best` checkpoint under {checkpoints.path} for folds {folds}: "
            "run `kedro run --pipeline training` first"
        )
    final = max(p for ps in phases.values() for p in ps)
    calendar = trading_calendar(features.path)
    names, masks = input_columns(features.columns)
    collector = InterpretationCollector([*names, *masks], seed=int(seed))
    frames, final_model = [], None
    with tempfile.TemporaryDirectory(prefix="atft_report_") as folder:
        edges = edges_file(graph_edges, Path(folder))
        for fold_split in splits["folds"]:
            fold = int(fold_split["fold"])
            if fold not in phases:
                continue
            scaler = OnlineRobustScaler.from_dict(scalers[f"fold{fold}"])
            test = dates_between(calendar, fold_split["test"])
            data = day_dataset(
                features.path, features.columns, edges, test, scaler, horizons, seq_len
            )
            for phase in phases[fold]:
                model = load_phase_model(checkpoints, fold, phase)
                log.info("fold %d phase %d: predicting %d test days", fold, phase, len(data))
                frames.append(predict_days(model, data, horizons, model.cfg.quantiles,
                                           model_name=MODEL_NAME, fold=fold, phase=phase))  # fmt: skip
                if phase == final:
                    with torch.no_grad():
                        for batch in day_loader(data):
                            collector.update(batch, model(batch, return_interpretation=True))
                    final_model = model
    interpretation = collector.result(final_model) | {"phase": final, "model": MODEL_NAME}
    return pl.concat(frames, how="vertical"), json_safe(interpretation)


def observed_inputs(table: pl.DataFrame, columns: list[str], train: list[str]) -> list[str]:
    """The columns with at least one finite value on the training dates (HistGradientBoosting
    cannot bin a column that is entirely missing, e.g. an optional table absent in early years)."""
    first, last = (dt.date.fromisoformat(str(d)) for d in train)
    rows = table.filter(pl.col("Date").is_between(first, last))
    seen = rows.select(pl.col(c).cast(pl.Float64).is_finite().any() for c in columns).row(0)
    return [c for c, ok in zip(columns, seen, strict=True) if ok]


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
    model_input: DayMajorParquet,
    splits: dict[str, Any],
    oracle_alpha: pl.DataFrame,
    cluster_peers: pl.DataFrame,
    reporting: dict[str, Any],
    horizons: list[int],
    seed: int,
) -> pl.DataFrame:
    """Every baseline of ``reporting.baselines`` on every fold's test dates (fitted on its train
    dates), plus, on the synthetic market, the oracle (``oracle_alpha``) and the observable
    ceiling ``structural`` (ridge with the peer family of the true clusters, ``cluster_peers``).
    Same table as `predictions`, for the reported horizons only (``reporting.horizons``)."""
    horizons = [int(h) for h in reporting.get("horizons") or horizons]
    names, masks = input_columns(model_input.columns)
    targets = [f"target_{h}d" for h in horizons]
    table = model_input.read(["Date", "Code", *names, *masks, *targets])
    tables = {name: table for name in reporting["baselines"]}
    if cluster_peers is not None and cluster_peers.height:
        tables["structural"] = with_peer_features(table, cluster_peers)
    if oracle_alpha is not None and oracle_alpha.height:
        tables["oracle"] = table
        if any(c.startswith("alpha_next_") for c in oracle_alpha.columns):
            tables["oracle_next"] = table
    frames = []
    for fold_split in splits["folds"]:
        observed = observed_inputs(table, [*names, *masks], fold_split["train"])
        for name, data in tables.items():
            log.info("baseline %s: fold %s", name, fold_split["fold"])
            frames.append(fit_predict_baseline(
                name, data, splits, int(fold_split["fold"]), horizons,
                baseline_inputs(name, observed), seed,
                oracle_alpha=oracle_alpha if name.startswith("oracle") else None,
                max_train_rows=int(reporting.get("max_train_rows", 300_000)),
                n_threads=int(reporting.get("threads") or 1),
            ))  # fmt: skip
    return pl.concat(frames, how="vertical")


def _evaluation_config(reporting: Mapping[str, Any], seed: int) -> EvaluationConfig:
    keys = ("cost_bps", "quantile", "top_n", "min_stocks", "n_boot", "mean_block")
    return EvaluationConfig(**{k: reporting[k] for k in keys if k in reporting}, seed=int(seed))


def predictions_by_model(
    predictions: pl.DataFrame, baseline_predictions: pl.DataFrame, baselines_order: list[str]
) -> dict[str, pl.DataFrame]:
    """{label: predictions}: the model's phases ascending, then baselines in the configured order,
    each restricted to the folds the model was evaluated on."""
    model = split_by_model(predictions.sort("phase", "Date", "Code"))
    model = dict(sorted(model.items(), key=lambda kv: kv[1]["phase"][0]))
    folds = predictions["fold"].unique().to_list()
    base = split_by_model(baseline_predictions.filter(pl.col("fold").is_in(folds)))
    order = [b for b in [*baselines_order, *CEILINGS] if b in base]
    return model | {b: base[b] for b in order}


def final_label(predictions: pl.DataFrame) -> str:
    """Label of the model's highest evaluated phase, e.g. ``atft/phase4``."""
    return model_label(MODEL_NAME, int(predictions["phase"].max()))


def evaluate_node(
    predictions: pl.DataFrame,
    baseline_predictions: pl.DataFrame,
    model_input: DayMajorParquet,
    panel: pl.DataFrame,
    reporting: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """The `evaluation` JSON (DESIGN §10): every model label × horizon, per fold and pooled, close
    to close (``models``) and under the tradable views (``views``: next-session close, next-session
    open, investable universe), the realism check and the universe size per day."""
    horizons = [int(h) for h in reporting["horizons"]]
    cfg = _evaluation_config(reporting, seed)
    by_model = predictions_by_model(predictions, baseline_predictions, reporting["baselines"])
    labels = model_input.read(["Date", "Code", "ret_1d", *label_columns(horizons)])
    # per-fold blocks for the close view only (the report's fold table); the others pooled
    per_view = {view: evaluate(tables, horizons, cfg, per_fold=view == "close")["models"]
                for view, tables in views_of(by_model, labels, horizons).items()}  # fmt: skip
    test_days = predictions["Date"].unique()
    realism = realism_check(
        per_view,
        unchanged_close_share(panel),
        reversal_rank_ic(labels, test_days, cfg.min_stocks),
        tuple(reporting.get("published_band") or PUBLISHED_BAND),
    )
    size = universe_size(labels.filter(pl.col("Date").is_in(test_days.implode())))
    return json_safe({
        "config": asdict(cfg) | {"horizons": horizons},
        "models": per_view.pop("close"),
        "views": per_view,
        "realism": realism,
        "universe": {c: size[c].cast(pl.Utf8 if c == "Date" else pl.Int64).to_list()
                     for c in size.columns},
        "final_model": final_label(predictions),
    })  # fmt: skip


def _history(training_metrics: Mapping[str, Any]) -> dict[str, pl.DataFrame]:
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
        rows = [{"epoch": offset + e["epoch"], "train_loss": e.get("train_total"),
                 "val_loss": e.get("val_loss"), "val_rank_ic": e.get(f"val_rank_ic_{horizon}d")}
                for e in record.get("epochs", [])]  # fmt: skip
        if rows:
            offset = rows[-1]["epoch"]
            label = f"fold {fold} phase {record.get('phase')}"
            out[label] = pl.DataFrame(rows, schema={"epoch": pl.Int64, "train_loss": pl.Float64,
                                                    "val_loss": pl.Float64,
                                                    "val_rank_ic": pl.Float64})  # fmt: skip
    return out


def _interpretation_figures(interpretation: Mapping[str, Any]) -> dict[str, Figure]:
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


def figures_node(
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
    """The report figures, {file name: Figure} (names and captions in ``FIGURES``)."""
    h = int(reporting["horizons"][0])
    by_model = predictions_by_model(predictions, baseline_predictions, reporting["baselines"])
    final = evaluation.get("final_model") or final_label(predictions)
    phases = [label for label in by_model if label.startswith(f"{MODEL_NAME}/")]
    baselines = [label for label in by_model if label not in phases]
    daily = daily_series(
        {k: v for k, v in by_model.items() if k == final or k in baselines or k in phases},
        [h],
        _evaluation_config(reporting, seed),
    )

    def per_model(labels: list[str], columns: dict[str, str]) -> dict[str, pl.DataFrame]:
        return {
            label: daily.filter(pl.col("model") == label).select(
                "Date", *(pl.col(src).alias(dst) for dst, src in columns.items())
            )
            for label in labels
        }

    ls = {"gross": "quantile_gross", "net": "quantile_net"}
    models = evaluation["models"]
    deciles = {label: models[label][f"h{h}"]["pooled"]["deciles"]
               for label in [final, *baselines] if f"h{h}" in models.get(label, {})}  # fmt: skip
    stats = graph_stats.select("Date", *[c for c in GRAPH_STAT_COLUMNS if c in graph_stats.columns])
    figures = {
        "cumulative_long_short.png": plots.cumulative_returns(
            per_model([final, *baselines], ls), f"Long-short cumulative return (h={h})"
        ),
        "rolling_rank_ic.png": plots.rolling_rank_ic(
            per_model([*phases, *baselines], {"rank_ic": "rank_ic"}), 20
        ),
        "decile_returns.png": plots.decile_bars(deciles, f"Mean target_{h}d by prediction decile"),
        **_interpretation_figures(interpretation),
        "graph_statistics.png": plots.graph_statistics(stats),
        "graph_clusters.png": (
            plots.graph_statistics(graph_quality, "Graph vs the latent clusters")
            if graph_quality.height
            else plots.empty_figure(
                "Graph vs the latent clusters", "no latent clusters (real data)"
            )
        ),
        "training_curves.png": plots.training_curves(_history(training_metrics)),
        "tradable_views.png": plots.view_rank_ic(
            _view_values(evaluation, h, [final, *baselines]), f"RankIC by view, h = {h}"
        ),
        "universe_size.png": plots.universe_size(
            pl.DataFrame(
                evaluation.get("universe") or {"Date": [], "stocks": [], "investable": []}
            ).with_columns(pl.col("Date").cast(pl.Utf8).str.to_date())
        ),
    }
    return {name: figures[name] for name in FIGURES}


def _view_values(evaluation: Mapping[str, Any], h: int, labels: list[str]) -> dict[str, dict]:
    """{label: {view title: (RankIC, CI95)}} at horizon h, pooled test days."""
    views = {"close": evaluation["models"], **evaluation.get("views", {})}
    out = {}
    for label in labels:
        out[label] = {}
        for view, title in VIEW_TITLES.items():
            block = views.get(view, {}).get(label, {}).get(f"h{h}", {}).get("pooled")
            if block:
                out[label][title] = (block["rank_ic"]["mean"], block["rank_ic_mean_ci95"])
    return out


class _PNG:
    """A stored PNG that `render_report` embeds like a Figure (it only calls ``savefig``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def savefig(self, buffer: Any, **_: Any) -> None:
        buffer.write(self.data)


def phase_ablation(evaluation: Mapping[str, Any], h: int) -> list[dict[str, Any]]:
    """One row per model phase: pooled RankIC, CI95 and the change from the previous phase."""
    rows, previous = [], None
    for label, per_h in evaluation["models"].items():
        if not label.startswith(f"{MODEL_NAME}/") or f"h{h}" not in per_h:
            continue
        block = per_h[f"h{h}"]["pooled"]
        mean = block["rank_ic"]["mean"]
        change = None if previous is None or mean is None else mean - previous
        rows.append({"phase": label, "RankIC": mean, "CI95": block["rank_ic_mean_ci95"],
                     "Δ RankIC vs previous phase": change,
                     "net Sharpe": block["backtest"]["quantile"]["net"]["sharpe"]})  # fmt: skip
        previous = mean
    return rows


def report_node(
    evaluation: dict[str, Any],
    figures: Mapping[str, Callable[[], bytes] | bytes | Figure],
    features: DayMajorParquet,
    graph_quality: pl.DataFrame,
    splits: dict[str, Any],
    reporting: dict[str, Any],
) -> str:
    """The self-contained HTML report: verdict, summary tables with CI95, data, figures, definitions.

    ``figures``: the saved PNGs by file name (a PartitionedDataset's loaders, bytes or Figures).
    """
    tables = {}
    for h in reporting["horizons"]:
        tables[f"Summary, h = {h} trading day(s), pooled test days of all folds"] = summary_rows(
            evaluation, h
        )
    h = int(reporting["horizons"][0])
    tables[f"Three views, h = {h}: RankIC [CI95] by when the trade happens, pooled test days"] = (
        view_rows(evaluation, h, VIEW_TITLES)
    )
    if evaluation.get("realism"):
        tables["Realism check"] = realism_rows(evaluation["realism"])
    if evaluation.get("universe"):
        tables["Investable universe (params `universe`), test days"] = universe_rows(
            evaluation["universe"]
        )
    tables[f"What each phase adds (ablation), h = {h}"] = phase_ablation(evaluation, h)
    tables[f"RankIC per fold, h = {h} [CI95]"] = [
        {"model": label, "fold": fold,
         "RankIC": block["rank_ic"]["mean"], "CI95": block["rank_ic_mean_ci95"],
         "net Sharpe": block["backtest"]["quantile"]["net"]["sharpe"],
         "days": block["rank_ic"]["n_days"]}
        for label, per_h in evaluation["models"].items()
        for fold, block in per_h.get(f"h{h}", {}).get("folds", {}).items()
    ]  # fmt: skip
    if graph_quality.height:
        tables["Graph vs the latent clusters (synthetic market), mean over dates"] = [
            {"dates": graph_quality.height,
             **{c: graph_quality[c].mean() for c in graph_quality.columns if c != "Date"}}
        ]  # fmt: skip
    names, masks = input_columns(features.columns)
    description = describe_data(features.read(["Date", "Code"]), splits, [*names, *masks])
    embedded = {}
    for name, caption in FIGURES.items():
        key = next((k for k in figures if k == name or f"{k}.png" == name), None)
        if key is None:
            continue
        figure = figures[key]
        figure = figure() if callable(figure) else figure
        embedded[caption] = _PNG(figure) if isinstance(figure, bytes) else figure
    cfg = evaluation.get("config", {})
    return render_report(
        tables,
        embedded,
        description,
        verdict(evaluation, evaluation.get("final_model"), h),
        title=f"ATFT-GAT-FAN evaluation (costs {cfg.get('cost_bps')} bps on turnover)",
        warning=realism_message(evaluation.get("realism") or {}),
    )
