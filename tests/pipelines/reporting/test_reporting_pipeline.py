"""The Kedro reporting pipeline on the tiny synthetic market: predictions, baselines, evaluation,
figures and the HTML report, through the project's own catalog entries (paths moved to tmp)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from atft_kedro.datasets import DayMajorParquetDataset
from atft_kedro.evaluation.figures import FIGURES
from atft_kedro.evaluation.report import MISSING
from atft_kedro.inference.predict import load_phase_model, predict_folds
from atft_kedro.loader.day_graph import edges_file
from atft_kedro.pipelines.reporting import create_pipeline
from atft_kedro.pipelines.tracking import evaluation_metrics
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_data import input_columns
from tests.pipelines.reporting.tiny_run import CHOSEN, HORIZONS, LABEL, catalog, tiny_run

CATALOG = Path(__file__).parents[3] / "conf" / "base" / "catalog_reporting.yml"
QUANTILES = [0.1, 0.25, 0.5, 0.75, 0.9]


def project_entries(root: Path) -> DataCatalog:
    """The reporting outputs as declared in conf/base/catalog_reporting.yml, under ``root``."""
    text = CATALOG.read_text().replace("data/", f"{root}/data/")
    return DataCatalog.from_config(yaml.safe_load(text))


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    run = tiny_run()
    entries = project_entries(root)
    full = catalog(run, **{name: entries.get(name) for name in entries.keys()})
    SequentialRunner().run(create_pipeline(), full)
    return root / "data"


def test_predictions_follow_the_contract_for_every_fold_and_phase(reported):
    run = tiny_run()
    preds = pl.read_parquet(reported / "07_model_output" / "predictions.parquet")
    expected = [
        "Date",
        "Code",
        "model",
        "fold",
        "phase",
        *[f"pred_{h}d" for h in HORIZONS],
        *[f"q{q:g}_{h}d" for h in HORIZONS for q in QUANTILES],
        *[f"target_{h}d" for h in HORIZONS],
        "label",
    ]
    assert preds.columns == expected
    assert (preds["label"] == LABEL).all(), "the label each phase was fitted to (its checkpoint)"
    labels = run.features.read(["Date", "Code", "target_next_1d"])
    joined = preds.join(labels, on=["Date", "Code"])
    assert joined["target_1d"].equals(joined["target_next_1d"], check_names=False)
    assert sorted(preds.select("fold", "phase").unique().rows()) == [
        (f, p) for f in (0, 1) for p in (0, 1, 2)
    ]
    assert (
        preds.select(pl.struct("fold", "phase", "Date", "Code").is_duplicated().any()).item()
        is False
    )
    for spec in run.splits["folds"]:
        dates = preds.filter(pl.col("fold") == spec["fold"])["Date"]
        assert str(dates.min()) >= spec["test"][0] and str(dates.max()) <= spec["test"][1]
    q = preds.select([f"q{q:g}_1d" for q in QUANTILES]).to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0), "quantiles must be monotone"


def test_validation_predictions_cover_each_folds_final_phase_and_every_baseline(reported):
    run = tiny_run()
    out = reported / "07_model_output"
    test = pl.read_parquet(out / "predictions.parquet")
    val = pl.read_parquet(out / "validation_predictions.parquet")
    assert val.columns == test.columns
    assert sorted(val.select("fold", "phase").unique().rows()) == sorted(CHOSEN.items())
    base_val = pl.read_parquet(out / "baseline_validation_predictions.parquet")
    base_test = pl.read_parquet(out / "baseline_predictions.parquet")
    assert base_val.columns == base_test.columns
    pairs = sorted(base_val.select("model", "fold").unique().rows())
    assert pairs == sorted(base_test.select("model", "fold").unique().rows())
    for spec in run.splits["folds"]:
        for table in (val, base_val):
            dates = table.filter(pl.col("fold") == spec["fold"])["Date"]
            assert str(dates.min()) >= spec["val"][0] and str(dates.max()) <= spec["val"][1]


def test_test_day_predictions_do_not_depend_on_the_validation_ones(reported, tmp_path):
    run = tiny_run()
    test, val, _ = predict_folds(
        run.features.path,
        edges_file(run.graph_edges, tmp_path),
        run.splits,
        run.scalers,
        CheckpointStore(run.checkpoints),
        horizons=HORIZONS,
        seq_len=10,
        seed=0,
        validation_phases={},
    )
    assert val.height == 0
    assert test.equals(pl.read_parquet(reported / "07_model_output" / "predictions.parquet"))


def test_evaluation_has_the_controlled_book_chosen_on_validation_days(reported):
    evaluation = json.loads((reported / "08_reporting" / "evaluation.json").read_text())
    book = evaluation["book"]
    assert book["horizon"] == 1 and book["config"]["half_lives"] == [0.0, 2.0, 5.0]
    # the phases' validation days are predicted only where a fold chose them: no full book
    assert list(book["models"]) == [
        "atft/final",
        "ridge",
        "peer_ridge",
        "inputs_ridge",
        "hgb",
        "momentum",
        "reversal",
        "structural",
        "oracle",
        "oracle_next",
    ]
    for block in book["models"].values():
        assert set(block["folds"]) == {"0", "1"}
        for fold in block["folds"].values():
            assert len(fold["validation"]) == 6
            chosen = fold["chosen"]
            best = max(r["net_sharpe"] for r in fold["validation"] if r["net_sharpe"] is not None)
            assert any(
                r["net_sharpe"] == best
                and r["half_life"] == chosen["half_life"]
                and r["rebalance_every"] == chosen["rebalance_every"]
                for r in fold["validation"]
            )
        assert (
            block["net"]["n_days"]
            == evaluation["models"]["ridge"]["h1"]["pooled"]["backtest"]["quantile"]["net"][
                "n_days"
            ]
        )
    assert evaluation["universe_check"]["fired"] is False
    jpx = evaluation["models"]["atft/final"]["h1"]["pooled"]["jpx_metric"]
    assert jpx["n_days"] > 0 and len(jpx["score_ci95"]) == 2
    html = (reported / "08_reporting" / "report.html").read_text()
    rows = _cells(html, "Turnover control")
    assert rows[0] == "atft/final" and "JPX metric [CI95]" in html
    assert "with turnover control (fold 0: " in html
    metrics = evaluation_metrics(evaluation)  # what a tracked run records
    assert (
        metrics["final/h1/net_sharpe_controlled"] == book["models"]["atft/final"]["net"]["sharpe"]
    )
    assert metrics["final/h1/jpx_metric"] == jpx["score"] and "ridge/h5/jpx_metric" not in metrics


def test_evaluation_has_every_model_and_the_final_model_chosen_on_validation_days(reported):
    evaluation = json.loads((reported / "08_reporting" / "evaluation.json").read_text())
    labels = list(evaluation["models"])
    assert labels == [
        "atft/phase0",
        "atft/phase1",
        "atft/phase2",
        "atft/final",
        "ridge",
        "peer_ridge",
        "inputs_ridge",
        "hgb",
        "momentum",
        "reversal",
        "structural",
        "oracle",
        "oracle_next",
    ]
    assert evaluation["label"] == LABEL
    assert evaluation["final_model"] == "atft/final"
    choice = evaluation["final_choice"]["folds"]
    assert {int(f): b["phase"] for f, b in choice.items()} == CHOSEN
    # the final model is each fold's chosen phase: its per-fold figures are that phase's
    for fold, phase in CHOSEN.items():
        final = evaluation["models"]["atft/final"]["h1"]["folds"][str(fold)]
        chosen = evaluation["models"][f"atft/phase{phase}"]["h1"]["folds"][str(fold)]
        assert final["rank_ic"] == chosen["rank_ic"]
    oracle = evaluation["models"]["oracle"]["h1"]["pooled"]["rank_ic"]["mean"]
    assert oracle > 0.05, "the planted alpha must rank the realised returns"
    assert set(evaluation["models"]["ridge"]["h1"]["folds"]) == {"0", "1"}


def test_interpretation_summaries_are_normalised(reported):
    interp = json.loads((reported / "08_reporting" / "interpretation.json").read_text())
    names, masks = input_columns(tiny_run().features.columns)
    assert interp["phase"] == 2 and interp["inputs"] == [*names, *masks]
    assert sum(interp["vsn_importance"].values()) == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(np.sum(interp["fan"]["weights"], axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.sum(interp["san"]["feature_slice_weights"], axis=1), 1.0)
    assert sum(interp["san"]["slice_weights"]) == pytest.approx(1.0)
    gat = interp["gat"]
    assert gat["same_sector"]["edges"] > 0 and gat["other"]["edges"] > 0
    assert all(0.0 <= a <= 1.0 for a in gat["other"]["sample"])


def _cells(html: str, heading: str) -> list[str]:
    section = html.split(f"<h2>{heading}", 1)[1].split("<h2>", 1)[0]
    return re.findall(r"<td>(.*?)</td>", section, flags=re.S)


def test_report_embeds_every_figure_and_only_finite_or_marked_cells(reported):
    html = (reported / "08_reporting" / "report.html").read_text()
    pngs = sorted(p.name for p in (reported / "08_reporting" / "figures").glob("*.png"))
    assert pngs == sorted(FIGURES)
    assert html.count("data:image/png;base64,") == len(pngs)
    for caption in FIGURES.values():
        assert f"<figcaption>{caption}</figcaption>" in html.replace("&#39;", "'")
    for h in HORIZONS:
        cells = _cells(html, f"Summary, h = {h}")
        assert len(cells) == 13 * (15 if h == 1 else 12), "13 models x 15 (h = 1) or 12 columns"
        for cell in cells:
            if cell == MISSING or re.fullmatch(r"[a-z_]+(/phase\d|/final)?", cell):
                continue
            numbers = re.findall(r"-?\d+(?:\.\d+)?|nan|inf", cell.replace(MISSING, ""))
            assert numbers, f"cell {cell!r} is neither a number nor marked missing"
            assert all(math.isfinite(float(n)) for n in numbers), cell
    assert "h=1: atft/final RankIC" in html
    choice = _cells(html, "Final model: the phase chosen")
    assert choice[0] == "0" and choice[-1] == f"phase {CHOSEN[1]}"
    captured = _cells(html, "What the model captures")
    assert captured[0] == "the effect itself (vs the label&#39;s return)"
    assert "purge 14 + embargo 2" in html
    ablation = _cells(html, "What each phase adds")
    assert ablation[0::5] == ["atft/phase0", "atft/phase1", "atft/phase2"]
    assert ablation[3] == MISSING and ablation[8] != MISSING, "no change for the first phase"


def test_predictions_at_t_ignore_data_after_t(tmp_path):
    """Perturb every feature and graph row dated after t: test predictions up to t are unchanged,
    those after t change (so the perturbation reaches the model)."""
    run = tiny_run()
    first, last = map(dt.date.fromisoformat, run.splits["folds"][0]["test"])
    table = run.features.read()
    days = table.filter(pl.col("Date").is_between(first, last))["Date"].unique().sort()
    t = days[len(days) // 2]
    names, _ = input_columns(table.columns)
    rng = np.random.default_rng(1)
    later = table["Date"] > t
    noisy = table.with_columns(
        pl.when(later)
        .then(pl.lit(rng.normal(size=table.height)) * 3)
        .otherwise(pl.col(c))
        .cast(pl.Float32)
        .alias(c)
        for c in names
    )
    perturbed = DayMajorParquetDataset(str(tmp_path / "model_input.parquet"))
    perturbed.save(noisy)
    edges = run.graph_edges.with_columns(
        pl.when(pl.col("Date") > t).then(-pl.col("corr")).otherwise(pl.col("corr")).alias("corr")
    )
    pipeline = create_pipeline().only_nodes("predict_folds_node")

    def predict(**overrides) -> pl.DataFrame:
        out = SequentialRunner().run(pipeline, catalog(run, **overrides))
        return out["predictions"].load().filter(pl.col("fold") == 0)

    base = predict()
    moved = predict(model_input=perturbed, graph_edges=MemoryDataset(edges))
    cols = [c for c in base.columns if c.startswith(("pred_", "q"))]
    before, after = (pl.col("Date") <= t), (pl.col("Date") > t)
    assert base.filter(before).select(cols).equals(moved.filter(before).select(cols))
    assert base.filter(before).height > 0
    assert not base.filter(after).select(cols).equals(moved.filter(after).select(cols))


def test_a_checkpoint_from_other_model_code_is_a_one_line_error(tmp_path):
    store = CheckpointStore(tmp_path)
    state = CheckpointStore(tiny_run().checkpoints).load(0, 1, "best")
    state["model_state"]["fan.feature_logit_bias"] = torch.zeros(3, 99)
    store.save(0, 1, "best", state)
    with pytest.raises(ValueError, match=r"phase1/best.pt does not fit the current model code"):
        load_phase_model(store, 0, 1)


def test_graph_quality_measures_the_graph_against_the_latent_clusters(reported):
    quality = pl.read_parquet(reported / "08_reporting" / "graph_quality.parquet")
    assert quality.columns == ["Date", "in_cluster_share", "in_cluster_random", "peer_corr"]
    assert quality.height > 0
    # the tiny market's 8 clusters: the graph's edges are inside one far more often than random
    assert quality["in_cluster_share"].mean() > 2 * quality["in_cluster_random"].mean()
    html = (reported / "08_reporting" / "report.html").read_text()
    assert "Graph vs the latent clusters (synthetic market)" in html


def test_evaluation_has_the_tradable_views_and_a_silent_realism_check(reported):
    evaluation = json.loads((reported / "08_reporting" / "evaluation.json").read_text())
    assert set(evaluation["views"]) == {"close", "next_open", "investable"}
    for models in evaluation["views"].values():
        assert list(models) == list(evaluation["models"])
    close = evaluation["views"]["close"]["oracle"]["h1"]["pooled"]["rank_ic"]["mean"]
    lagged = evaluation["models"]["oracle_next"]["h1"]["pooled"]["rank_ic"]["mean"]
    assert 0 < lagged < close, "next-session entry gives up the day-t+1 part of the alpha"
    realism = evaluation["realism"]
    assert realism["fired"] is False, realism["above_band"]
    universe = evaluation["universe"]
    assert len(universe["Date"]) == len(universe["investable"]) > 0
    assert all(0 <= i <= s for i, s in zip(universe["investable"], universe["stocks"], strict=True))
    html = (reported / "08_reporting" / "report.html").read_text()
    assert "Views, h = 1" in html and "Realism check" in html
    assert 'class="warning"' not in html
