"""objective: a trial's training block, its graph file, the per-epoch pruning reports and the
stored daily RankIC; one real trial on the tiny market."""

from __future__ import annotations

import datetime as dt

import optuna
import polars as pl
import pytest

from atft_kedro.hpo import objective as objective_module
from atft_kedro.hpo.objective import (
    Evaluation,
    TrialSetup,
    daily_from_trial,
    evaluate_configuration,
    make_objective,
    trial_config,
)
from atft_kedro.hpo.search_space import parse_space
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.training.fold_data import fit_fold_scaler, trading_calendar
from tests.training.conftest import tiny_market as tiny_market  # the fixture
from tests.training.tiny_market import HORIZONS, SEQ_LEN, tiny_config, tiny_training_params

optuna.logging.set_verbosity(optuna.logging.WARNING)


def setup_for(tmp_path, *, max_epochs=None, edges=None, built_k=None, **kwargs) -> TrialSetup:
    values = {
        "features_path": tmp_path / "features.parquet",
        "edges": edges,
        "fold_split": {"fold": 3},
        "calendar": [],
        "scaler": OnlineRobustScaler(["f"]),
        "training": {},
        "label": "next_close",
        "phase": 1,
        "horizons": HORIZONS,
        "seq_len": SEQ_LEN,
        "seed": 0,
        "work_dir": tmp_path,
        "max_epochs": max_epochs,
        "built_k": built_k,
    }
    return TrialSetup(**(values | kwargs))


def test_trial_config_caps_every_phase_at_max_epochs(tmp_path):
    training = {
        "progress_bar": True,
        "folds": None,
        "phases": {"0": {"epochs": 5, "lr": 1e-3}, "1": {"epochs": 2}, 2: {"lr": 3e-4}},
    }
    cfg = trial_config(setup_for(tmp_path, max_epochs=3), training)
    assert cfg.progress_bar is False and cfg.folds == (3,)  # the setup's fold only
    assert {p: (s.epochs, s.lr) for p, s in cfg.phases.items()} == {
        0: (3, 1e-3),  # capped
        1: (2, 1e-3),  # below the cap: as it was
        2: (1, 3e-4),  # no `epochs`: the phase default, 1
    }
    assert cfg.label == "next_close"  # the setup's label
    assert training["phases"]["0"]["epochs"] == 5 and training["folds"] is None  # not mutated


def test_trial_config_without_a_cap_leaves_the_phases_alone(tmp_path):
    cfg = trial_config(setup_for(tmp_path), {"phases": {"0": {"epochs": 5}}})
    assert cfg.phases[0].epochs == 5


def edge_table() -> pl.DataFrame:
    """A chain A-B-C-D (|corr| .9, .8, .7) with two weak chords A-C, B-D; both directions."""
    pairs = [("A", "B", 0.9), ("B", "C", -0.8), ("C", "D", 0.7), ("A", "C", 0.1), ("B", "D", 0.2)]
    rows = [(s, d, c) for a, b, c in pairs for s, d in ((a, b), (b, a))]
    return pl.DataFrame(
        {
            "Date": [dt.date(2024, 1, 4)] * len(rows),
            "src_code": [r[0] for r in rows],
            "dst_code": [r[1] for r in rows],
            "corr": [r[2] for r in rows],
            "same_market": [0] * len(rows),
            "same_sector33": [1] * len(rows),
        },
    )


def test_edges_file_writes_each_k_once_and_refuses_a_k_above_the_built_one(tmp_path):
    assert setup_for(tmp_path).edges_file(2) is None  # no graph: no file
    setup = setup_for(tmp_path, edges=edge_table(), built_k=2)
    built = setup.edges_file(None)
    assert built.name == "graph_edges_kbuilt.parquet" and pl.read_parquet(built).height == 10
    one = setup.edges_file(1)
    pairs = set(pl.read_parquet(one).select("src_code", "dst_code").iter_rows())
    # k = 1: A, B, C, D propose B, A, B, C; the union is symmetric: the chain without chords
    chain = {("A", "B"), ("B", "C"), ("C", "D")}
    assert pairs == chain | {(d, s) for s, d in chain}
    one.unlink()
    assert setup.edges_file(1) == one and not one.exists()  # cached: not written again
    with pytest.raises(ValueError, match="graph.k=3 exceeds the k=2 the graph was built with"):
        setup.edges_file(3)


def fake_evaluation(value, epochs):
    """evaluate_configuration's stand-in: reports `epochs` val RankICs, returns `value`."""
    seen = {}

    def evaluate(setup, training, k=None, on_epoch_end=None):
        seen.update(training=training, k=k)
        for v in epochs:
            on_epoch_end({"val_mean_rank_ic": v})
        days = pl.DataFrame(
            {"Date": [dt.date(2024, 2, 1), dt.date(2024, 2, 2)], "rank_ic": [0.1, -0.2]}
        )
        return Evaluation(value, days, {"fold3_phase1": {"best_val_rank_ic": value}})

    return evaluate, seen


SPACE = parse_space(
    {
        "lr_scale": {
            "path": "phases.*.lr",
            "type": "float",
            "low": 0.5,
            "high": 2.0,
            "mode": "scale",
        },
        "graph_k": {"path": "graph.k", "type": "int", "low": 2, "high": 4, "step": 2},
    }
)


def test_the_objective_reports_each_epoch_and_keeps_the_daily_rank_ic(tmp_path, monkeypatch):
    evaluate, seen = fake_evaluation(0.07, [0.03, None, 0.07])
    monkeypatch.setattr(objective_module, "evaluate_configuration", evaluate)
    setup = setup_for(tmp_path, training={"phases": {"0": {"lr": 1e-3}}})
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.enqueue_trial({"lr_scale": 2.0, "graph_k": 4})
    study.optimize(make_objective(setup, SPACE), n_trials=1)
    (trial,) = study.trials
    assert trial.value == 0.07
    assert trial.intermediate_values == {0: 0.03, 2: 0.07}  # one step per epoch; None not reported
    assert seen["k"] == 4 and seen["training"]["phases"]["0"]["lr"] == pytest.approx(2e-3)
    assert trial.user_attrs["phase_rank_ic"] == {"fold3_phase1": 0.07}
    stored = daily_from_trial(trial)
    assert stored["Date"].to_list() == [dt.date(2024, 2, 1), dt.date(2024, 2, 2)]
    assert stored["rank_ic"].to_list() == [0.1, -0.2]


class PruneAfter(optuna.pruners.BasePruner):
    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def test_the_pruner_stops_a_trial_after_the_epoch_it_judged(tmp_path, monkeypatch):
    evaluate, _ = fake_evaluation(0.07, [0.01, 0.02, 0.03])
    monkeypatch.setattr(objective_module, "evaluate_configuration", evaluate)
    study = optuna.create_study(direction="maximize", pruner=PruneAfter(1))
    study.optimize(make_objective(setup_for(tmp_path), SPACE), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {0: 0.01, 1: 0.02}  # the third epoch never reported


def test_a_trial_without_a_finite_rank_ic_is_pruned(tmp_path, monkeypatch):
    evaluate, _ = fake_evaluation(None, [None])
    monkeypatch.setattr(objective_module, "evaluate_configuration", evaluate)
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(setup_for(tmp_path), SPACE), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert daily_from_trial(trial).height == 2  # its daily RankIC is kept all the same
    empty = daily_from_trial(optuna.trial.create_trial(value=0.0))
    assert empty.is_empty() and empty.schema == {"Date": pl.Date, "rank_ic": pl.Float64}


def test_evaluate_configuration_trains_phases_up_to_the_objective_with_capped_epochs(
    tiny_market, tmp_path
):
    fold = tiny_market["splits"]["folds"][0]
    calendar = trading_calendar(tiny_market["features"])
    training = tiny_training_params(epochs=2)
    scaler = fit_fold_scaler(
        tiny_market["features"], fold, calendar, tiny_config(training).scaler, 0
    )
    setup = TrialSetup(
        tiny_market["features"],
        None,
        fold,
        calendar,
        scaler,
        training,
        label="next_close",
        phase=1,
        horizons=HORIZONS,
        seq_len=SEQ_LEN,
        seed=0,
        work_dir=tmp_path,
        max_epochs=1,
    )
    result = evaluate_configuration(setup, training)
    assert set(result.records) == {"fold0_phase0", "fold0_phase1"}  # phases 0 … setup.phase
    assert [len(r["epochs"]) for r in result.records.values()] == [1, 1]  # 2 capped at 1
    assert result.value == result.records["fold0_phase1"]["best_val_rank_ic"]
    assert result.daily.columns == ["Date", "rank_ic"] and result.daily.height > 0
    assert list(tmp_path.glob("trial_*")) == []  # the trial's checkpoints are thrown away
