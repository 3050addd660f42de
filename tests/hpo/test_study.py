"""study: one Optuna study shared through an RDB storage, its trial table and the best-vs-default
comparison, on hand-made trials and an SQLite file in tmp_path."""

from __future__ import annotations

import datetime as dt

import numpy as np
import optuna
import polars as pl
import pytest
import sqlalchemy.exc

from atft_kedro.hpo import study as study_module
from atft_kedro.hpo.study import (
    compare_daily,
    open_storage,
    open_study,
    param_importance,
    storage_url,
    trials_table,
    worker_seed,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_storage_url_keeps_a_url_and_turns_a_path_into_sqlite(tmp_path):
    assert storage_url("postgresql://db/hpo", tmp_path / "x.db") == "postgresql://db/hpo"
    path = tmp_path / "new" / "dir" / "study.db"
    assert storage_url(str(path), tmp_path / "default.db") == f"sqlite:///{path.resolve()}"
    assert path.parent.is_dir()  # created, so that SQLite can create the file
    assert storage_url(None, tmp_path / "d" / "default.db") == (
        f"sqlite:///{(tmp_path / 'd' / 'default.db').resolve()}"
    )


def test_worker_seeds_are_reproducible_distinct_and_31_bit():
    seeds = [worker_seed(42, w) for w in range(8)]
    assert seeds == [worker_seed(42, w) for w in range(8)]
    assert len(set(seeds)) == 8 and all(0 <= s < 2**31 for s in seeds)
    assert worker_seed(43, 0) != seeds[0]


def sqlite(tmp_path) -> optuna.storages.RDBStorage:
    """A worker's connection to the study file in tmp_path."""
    return open_storage(f"sqlite:///{tmp_path / 'hpo.db'}", heartbeat_s=None)


def test_a_second_worker_joins_the_study_and_sees_its_trials(tmp_path):
    first = open_study("tiny", sqlite(tmp_path), seed=0, worker=0)
    assert first.direction == optuna.study.StudyDirection.MAXIMIZE
    trial = first.ask()
    trial.suggest_float("x", 0.0, 1.0)
    first.tell(trial, 0.25)

    second = open_study("tiny", sqlite(tmp_path), seed=0, worker=1)
    assert second._study_id == first._study_id
    assert [t.value for t in second.trials] == [0.25]
    assert optuna.study.get_all_study_names(sqlite(tmp_path)) == ["tiny"]


def first_draw(worker: int) -> float:
    study = open_study("s", optuna.storages.InMemoryStorage(), seed=7, worker=worker)
    return study.ask().suggest_float("x", 0.0, 1.0)


def test_the_sampler_is_seeded_by_seed_and_worker():
    assert first_draw(0) == first_draw(0)
    assert first_draw(1) != first_draw(0)


def test_the_pruner_block_chooses_and_configures_the_pruner():
    block = {"kind": "median", "n_startup_trials": 3, "n_warmup_steps": 2}
    study = open_study("m", optuna.storages.InMemoryStorage(), seed=0, pruner=block)
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    assert study.pruner._n_startup_trials == 3 and study.pruner._n_warmup_steps == 2
    assert block["kind"] == "median"  # the caller's parameters are left as they were
    none = open_study("n", optuna.storages.InMemoryStorage(), seed=0, pruner={"kind": "none"})
    assert isinstance(none.pruner, optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="hpo.pruner.kind must be median or none, got 'hyperband'"):
        open_study("h", optuna.storages.InMemoryStorage(), seed=0, pruner={"kind": "hyperband"})


def test_open_storage_retries_a_locked_database_then_gives_up(monkeypatch, tmp_path):
    calls, pauses = [], []
    real = optuna.storages.RDBStorage

    def flaky(url, **kwargs):
        calls.append(kwargs)
        if len(calls) < 3:
            raise sqlalchemy.exc.OperationalError("CREATE TABLE", {}, Exception("locked"))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr(study_module.time, "sleep", pauses.append)
    storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat_s=30)
    assert len(calls) == 3 and pauses == [0.5, 1.0]
    assert calls[0]["engine_kwargs"] == {"connect_args": {"timeout": 60}}
    assert storage.heartbeat_interval == 30 and storage.grace_period == 60

    calls.clear()  # the first two attempts fail again
    with pytest.raises(sqlalchemy.exc.OperationalError):
        open_storage(f"sqlite:///{tmp_path / 'y.db'}", attempts=2)
    assert len(calls) == 2


def hand_made_study() -> optuna.Study:
    """Trials 0 (complete, default configuration), 1 (pruned after 2 epochs), 2 (complete)."""
    study = optuna.create_study(direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    windows = optuna.distributions.CategoricalDistribution(["[5]", "[5, 10]"])
    dists = {"lr": lr, "windows": windows}
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 1e-3, "windows": "[5, 10]"},
            distributions=dists,
            value=0.02,
            user_attrs={"configuration": "default"},
            intermediate_values={0: 0.01, 1: 0.02},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 5e-3, "windows": "[5]"},
            distributions=dists,
            state=optuna.trial.TrialState.PRUNED,
            intermediate_values={0: -0.01, 1: -0.02},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 2e-4, "windows": "[5]"},
            distributions=dists,
            value=0.05,
            intermediate_values={0: 0.05},
        )
    )
    return study


def test_trials_table_has_one_row_per_trial_with_its_parameters():
    table = trials_table(hand_made_study())
    assert table["number"].to_list() == [0, 1, 2]
    assert table["state"].to_list() == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert table["value"].to_list() == [0.02, None, 0.05]
    assert table["configuration"].to_list() == ["default", "searched", "searched"]
    assert table["epochs_reported"].to_list() == [2, 2, 1]
    assert table["param_lr"].to_list() == [1e-3, 5e-3, 2e-4]
    assert table["param_windows"].to_list() == ["[5, 10]", "[5]", "[5]"]  # the stored JSON label
    assert {"datetime_start", "duration_s"} <= set(table.columns)
    empty = trials_table(optuna.create_study())
    assert empty.is_empty() and empty.columns == ["number", "state", "value"]


def test_param_importance_needs_two_completed_trials():
    study = optuna.create_study(direction="maximize")
    x = optuna.distributions.FloatDistribution(0.0, 1.0)
    study.add_trial(optuna.trial.create_trial(params={"x": 0.1}, distributions={"x": x}, value=1.0))
    assert param_importance(study) == (
        {},
        "1 completed trial(s): at least 2 are needed for importances",
    )
    for v in (0.5, 0.9):
        study.add_trial(optuna.trial.create_trial(params={"x": v}, distributions={"x": x}, value=v))
    importance, note = param_importance(study)
    assert note == "" and importance == pytest.approx({"x": 1.0})  # the only parameter


def daily(start: int, values: list[float | None]) -> pl.DataFrame:
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=start + i) for i in range(len(values))]
    return pl.DataFrame(
        {"Date": dates, "rank_ic": values}, schema_overrides={"rank_ic": pl.Float64}
    )


def test_compare_daily_pairs_the_days_both_were_scored():
    best = daily(0, [0.1, 0.2, None, 0.4])  # days 0-3; day 2 not scored
    default = daily(1, [0.0, 0.1, 0.3, 0.9])  # days 1-4
    out = compare_daily(best, default, np.random.default_rng(0), n_boot=200)
    assert out["days"] == 2  # days 1 and 3
    assert out["best_mean_rank_ic"] == pytest.approx((0.2 + 0.4) / 2)
    assert out["default_mean_rank_ic"] == pytest.approx((0.0 + 0.3) / 2)
    assert out["gap_mean"] == pytest.approx((0.2 + 0.1) / 2)
    for key, (lo, hi) in (
        ("best_ci95", (0.2, 0.4)),
        ("default_ci95", (0.0, 0.3)),
        ("gap_ci95", (0.1, 0.2)),
    ):
        a, b = out[key]
        assert lo - 1e-12 <= a <= b <= hi + 1e-12, (key, out[key])


def test_compare_daily_without_common_days_says_none():
    out = compare_daily(daily(0, [0.1, 0.2]), daily(5, [0.3]), np.random.default_rng(0), n_boot=50)
    assert out["days"] == 0
    assert out["best_mean_rank_ic"] is None and out["gap_mean"] is None
    assert out["best_ci95"] == out["default_ci95"] == out["gap_ci95"] == [None, None]
