"""An Optuna study shared by any number of workers through one RDB storage.

Storage is a SQLite file by default; any SQLAlchemy URL Optuna accepts (PostgreSQL, MySQL) lets
workers on several machines join the same study: each opens it by name with `load_if_exists`,
claims trials through the database, and sees the others' results (TPE's `constant_liar` keeps
concurrent workers from sampling the same point). Heartbeats mark trials of a crashed worker as
failed so the study does not wait on them.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import sqlalchemy.exc

from atft_kedro.evaluation.bootstrap import mean_ci

log = logging.getLogger(__name__)


def storage_url(storage: str | None, default_path: str | Path) -> str:
    """An RDB URL: `storage` if it is one (`scheme://…`), a SQLite URL for a path, else the default."""
    if storage and "://" in storage:
        return storage
    path = Path(storage or default_path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_storage(
    url: str, heartbeat_s: int | None = 60, attempts: int = 5
) -> optuna.storages.RDBStorage:
    """RDB storage; SQLite waits up to 60 s for a lock so that concurrent workers queue, not fail.

    Workers starting together race to create the schema; the loser retries after a short pause.
    """
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat_s,
                grace_period=None if heartbeat_s is None else 2 * heartbeat_s,
            )
        except sqlalchemy.exc.DBAPIError:  # locked, or the schema created meanwhile
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def worker_seed(seed: int, worker: int) -> int:
    """Sampler seed of one worker: reproducible, and different between workers of a study."""
    return int(np.random.SeedSequence([int(seed), int(worker)]).generate_state(1)[0] >> 1)


def open_study(
    name: str,
    storage: str | optuna.storages.BaseStorage,
    *,
    seed: int,
    worker: int = 0,
    n_startup_trials: int = 5,
    pruner: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study, or join it if another worker already did (maximising RankIC).

    Sampler: TPE seeded by (seed, worker). Pruner: MedianPruner (`pruner` holds its arguments:
    n_startup_trials, n_warmup_steps, interval_steps), or none with `{"kind": "none"}`.
    """
    pruner = dict(pruner or {})
    kind = pruner.pop("kind", "median")
    if kind not in ("median", "none"):
        raise ValueError(f"hpo.pruner.kind must be median or none, got {kind!r}")
    create = functools.partial(
        optuna.create_study,
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(
            seed=worker_seed(seed, worker), n_startup_trials=n_startup_trials, constant_liar=True
        ),
        pruner=optuna.pruners.MedianPruner(**pruner)
        if kind == "median"
        else optuna.pruners.NopPruner(),
    )
    try:
        return create()
    except (optuna.exceptions.DuplicatedStudyError, sqlalchemy.exc.IntegrityError):
        return create()  # another worker created it between our check and insert


def trials_table(study: optuna.Study) -> pl.DataFrame:
    """One row per trial: number, state, value, start, duration_s, configuration, param_<name>.

    Categorical parameters keep Optuna's stored label (JSON text for list choices).
    """
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "datetime_start": t.datetime_start,
                "duration_s": duration,
                "configuration": t.user_attrs.get("configuration", "searched"),
                "epochs_reported": len(t.intermediate_values),
                **{
                    f"param_{k}": (v if isinstance(v, int | float) else str(v))
                    for k, v in t.params.items()
                },
            }
        )
    if not rows:
        return pl.DataFrame(schema={"number": pl.Int64, "state": pl.Utf8, "value": pl.Float64})
    return pl.DataFrame(rows, infer_schema_length=None).sort("number")


def param_importance(study: optuna.Study) -> tuple[dict[str, float], str]:
    """(fANOVA importance per parameter, note). Empty with a reason when it cannot be estimated."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"{len(complete)} completed trial(s): at least 2 are needed for importances"
    try:
        return dict(optuna.importance.get_param_importances(study)), ""
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        return {}, f"importance not estimable: {err}"


def compare_daily(
    best: pl.DataFrame, default: pl.DataFrame, rng: np.random.Generator, n_boot: int = 2000
) -> dict[str, Any]:
    """Best vs default on the days both were scored: means and CI95 of daily RankIC and of the gap.

    CI95: stationary block bootstrap (`mean_ci`) over days; the gap is paired day by day, so its
    interval is tighter than comparing the two intervals.
    """
    both = best.join(default, on="Date", suffix="_default").drop_nulls().sort("Date")
    out: dict[str, Any] = {"days": both.height}
    for label, column in (("best", "rank_ic"), ("default", "rank_ic_default")):
        x = both[column].to_numpy()
        out[f"{label}_mean_rank_ic"] = float(np.mean(x)) if x.size else None
        out[f"{label}_ci95"] = list(mean_ci(x, n_boot=n_boot, rng=rng))
    gap = (both["rank_ic"] - both["rank_ic_default"]).to_numpy()
    out["gap_mean"] = float(np.mean(gap)) if gap.size else None
    out["gap_ci95"] = list(mean_ci(gap, n_boot=n_boot, rng=rng))
    out = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()
    }
    for k in ("best_ci95", "default_ci95", "gap_ci95"):
        out[k] = [None if not math.isfinite(v) else v for v in out[k]]
    return out
