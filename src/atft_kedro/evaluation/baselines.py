"""Reference predictors on the same splits and features as the model.

Each returns a `predictions` table (Date, Code, model, fold, phase=null, pred_{h}d, target_{h}d)
for the fold's validation and test dates, fitted once on its train dates only. Cross-sectional learners see one day's
row of model inputs (no sequence):

* ``ridge``: scikit-learn Ridge on robust-scaled inputs (train median / 1.4826·MAD, clipped to ±5,
  missing → 0), label = the target's per-day rank mapped to [−0.5, 0.5] (scale-free across days),
  on the features table's inputs only (no peer family): the classic linear baseline.
* ``peer_ridge``: the same Ridge on every model input, the graph's peer family included.
* ``inputs_ridge``: the same Ridge on the feature families the network reads
  (``training.inputs``): what a linear model makes of the network's own inputs.
* ``hgb``: HistGradientBoostingRegressor on every model input, raw (native NaN handling), same
  label.
* ``structural``: the same Ridge on the features table's inputs plus the peer family built from
  each code's *true* latent cluster instead of its graph neighbours (synthetic market only,
  ``latent_clusters``; prices up to t only): the observable ceiling, what a simple estimator
  reaches when the peer structure is known. Evaluation only.
* ``momentum``: the 20-day return feature ``ret_20d`` (close t / close t−20 − 1).
* ``reversal``: minus the 5-day return feature ``ret_5d``.
* ``oracle``: the planted expected return ``alpha_{h}d`` (synthetic market only): the ceiling.
  Evaluation only; it never reaches a feature.
* ``oracle_next``: the planted expected return with next-session entry, ``alpha_next_{h}d``
  (close t+1 to close t+1+h, known at t): the ceiling of the tradable views.

Training rows beyond ``max_train_rows`` are subsampled uniformly with the seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from atft_kedro.evaluation.predictions import pred_col, require_columns, target_col
from atft_kedro.features import registry
from atft_kedro.features.labels import DEFAULT_LABEL
from atft_kedro.features.model_input import with_peer_features

log = logging.getLogger(__name__)

BASELINES = (
    "ridge",
    "peer_ridge",
    "inputs_ridge",
    "hgb",
    "momentum",
    "reversal",
    "structural",
    "oracle",
    "oracle_next",
)
RIDGE_LEARNERS = ("ridge", "peer_ridge", "inputs_ridge", "structural")  # one learner, other inputs
CEILINGS = ("structural", "oracle", "oracle_next")  # synthetic only: yardsticks, not competitors
HGB_DEFAULTS = {
    "max_iter": 200,
    "learning_rate": 0.05,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def baseline_inputs(
    name: str, columns: Sequence[str], model_inputs: Sequence[str] | None = None
) -> list[str]:
    """The model-input ``columns`` a learner baseline sees: ``ridge`` leaves out the graph
    stage's families and their masks, ``inputs_ridge`` keeps the families the model reads
    (``model_inputs``, ``training.inputs``; None: all), the others take them all (``structural``
    gets its peer family from the true clusters, in the same columns)."""
    if name == "ridge":
        graph = set(registry.feature_names("graph") + registry.mask_names("graph"))
        return [c for c in columns if c not in graph]
    if name == "inputs_ridge" and model_inputs is not None:
        chosen = set(model_inputs)
        return [c for c in columns if (registry.family_of(c) or registry.mask_family(c)) in chosen]
    return list(columns)


def fold_dates(splits: dict, fold: int, block: str) -> tuple[date, date]:
    """Inclusive (first, last) trading date of ``block`` ('train'|'val'|'test') in a fold."""
    for spec in splits["folds"]:
        if spec["fold"] == fold:
            first, last = spec[block]
            return date.fromisoformat(str(first)), date.fromisoformat(str(last))
    have = [spec["fold"] for spec in splits["folds"]]
    raise ValueError(f"splits: no fold {fold} (have folds {have})")


def _rows(features: pl.DataFrame, span: tuple[date, date]) -> pl.DataFrame:
    return features.filter(pl.col("Date").is_between(*span, closed="both"))


def cross_sectional_rank_label(target: str) -> pl.Expr:
    """Per-day rank of ``target`` mapped to [−0.5, 0.5] (average ranks; null where target missing)."""
    y = pl.when(pl.col(target).is_finite()).then(pl.col(target))
    rank = y.rank("average").over("Date")
    n = y.count().over("Date")
    return pl.when(n > 1).then((rank - 1) / (n - 1) - 0.5)


@dataclass(frozen=True)
class LearnerSettings:
    """How the learner baselines fit: training-row cap, ridge penalty, HGB overrides."""

    max_train_rows: int = 300_000
    ridge_alpha: float = 10.0
    hgb_params: dict | None = None


def _fit_learner(
    name: str,
    train: pl.DataFrame,
    target: str,
    feature_cols: Sequence[str],
    *,
    rng: np.random.Generator,
    settings: LearnerSettings,
) -> Callable[[pl.DataFrame], np.ndarray]:
    """Fit learner ``name`` to the per-day rank of ``target`` on ``train`` → rows ↦ predictions."""
    train = train.with_columns(_label=cross_sectional_rank_label(target)).filter(
        pl.col("_label").is_not_null()
    )
    if train.height == 0:
        raise ValueError(f"baseline {name}: no training rows with a finite {target}")
    if train.height > settings.max_train_rows:
        keep = np.sort(rng.choice(train.height, size=settings.max_train_rows, replace=False))
        train = train[keep]
    x_train = train.select(feature_cols).to_numpy().astype(np.float64)
    y = train["_label"].to_numpy()

    def inputs(rows: pl.DataFrame) -> np.ndarray:
        return rows.select(feature_cols).to_numpy().astype(np.float64)

    if name in RIDGE_LEARNERS:
        median = np.nanmedian(x_train, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(x_train - median), axis=0)
        median, mad = np.nan_to_num(median), np.where(np.isfinite(mad) & (mad > 0), mad, 1.0)

        def scale(x: np.ndarray) -> np.ndarray:
            return np.nan_to_num(np.clip((x - median) / mad, -5.0, 5.0), nan=0.0)

        ridge = Ridge(alpha=settings.ridge_alpha).fit(scale(x_train), y)
        return lambda rows: ridge.predict(scale(inputs(rows)))
    params = HGB_DEFAULTS | (settings.hgb_params or {})
    seed = int(rng.integers(2**31 - 1))
    hgb = HistGradientBoostingRegressor(random_state=seed, **params).fit(x_train, y)
    return lambda rows: hgb.predict(inputs(rows))


@dataclass(frozen=True)
class SignalSettings:
    """Where the rule baselines and ceilings read their signal."""

    oracle_alpha: pl.DataFrame | None = None
    momentum_col: str = "ret_20d"
    reversal_col: str = "ret_5d"


def _predictor(
    name: str,
    features: pl.DataFrame,
    train_span: tuple[date, date],
    horizons: Sequence[int],
    feature_cols: Sequence[str],
    rng: np.random.Generator,
    settings: tuple[LearnerSettings, SignalSettings],
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Baseline ``name`` fitted (learners: on ``train_span``) → rows ↦ Date, Code, targets,
    pred_{h}d."""
    learner, signals = settings
    keys = ["Date", "Code", *[target_col(h) for h in horizons]]
    if name in (*RIDGE_LEARNERS, "hgb"):
        require_columns(features, feature_cols, name="features")
        train = _rows(features, train_span)
        fits = {
            pred_col(h): _fit_learner(
                name, train, target_col(h), feature_cols, rng=rng, settings=learner
            )
            for h in horizons
        }
        return lambda rows: rows.select(keys).with_columns(
            pl.Series(k, fit(rows), dtype=pl.Float64) for k, fit in fits.items()
        )
    if name in ("momentum", "reversal"):
        col = signals.momentum_col if name == "momentum" else signals.reversal_col
        require_columns(features, (col,), name="features")
        sign = 1.0 if name == "momentum" else -1.0
        signal = (sign * pl.col(col).cast(pl.Float64)).fill_nan(None)
        return lambda rows: rows.select(*keys, *(signal.alias(pred_col(h)) for h in horizons))
    if signals.oracle_alpha is None:
        raise ValueError("baseline oracle: needs the oracle_alpha table (synthetic market only)")
    return lambda rows: _with_oracle(rows.select(keys), signals.oracle_alpha, name, horizons)


def fit_predict_blocks(
    name: str,
    features: pl.DataFrame,
    splits: dict,
    fold: int,
    horizons: Sequence[int],
    blocks: Sequence[str] = ("val", "test"),
    *,
    feature_cols: Sequence[str] = (),
    seed: int = 0,
    oracle_alpha: pl.DataFrame | None = None,
    max_train_rows: int = 300_000,
    ridge_alpha: float = 10.0,
    hgb_params: dict | None = None,
    momentum_col: str = "ret_20d",
    reversal_col: str = "ret_5d",
    n_threads: int | None = None,
) -> dict[str, pl.DataFrame]:
    """Fit baseline ``name`` once on the fold's train dates and predict each of its ``blocks``
    ('val', 'test') → {block: predictions}.

    Each table follows the `predictions` contract: Date, Code, model, fold (Int32), phase (null
    Int32), pred_{h}d (Float64), target_{h}d for each h, sorted by Date, Code. ``feature_cols``:
    the learners' inputs. ``n_threads`` caps the BLAS/OpenMP threads of the learners (OpenMP
    spin-waiting on a busy small machine can make a HistGradientBoosting fit 100x slower).
    """
    if name not in BASELINES:
        raise ValueError(f"baseline: unknown name {name!r} (choose from {BASELINES})")
    targets = [target_col(h) for h in horizons]
    require_columns(features, ("Date", "Code", *targets), name="features")
    spans = {block: fold_dates(splits, fold, block) for block in ("train", *blocks)}
    settings = (
        LearnerSettings(max_train_rows, ridge_alpha, hgb_params),
        SignalSettings(oracle_alpha, momentum_col, reversal_col),
    )
    columns = ["Date", "Code", "model", "fold", "phase", *map(pred_col, horizons), *targets]
    out = {}
    with threadpool_limits(limits=n_threads):
        predict = _predictor(
            name,
            features,
            spans["train"],
            horizons,
            feature_cols,
            np.random.default_rng([seed, fold]),
            settings,
        )
        for block in blocks:
            preds = predict(_rows(features, spans[block]).sort("Date", "Code"))
            out[block] = preds.with_columns(
                model=pl.lit(name),
                fold=pl.lit(fold, dtype=pl.Int32),
                phase=pl.lit(None, dtype=pl.Int32),
            ).select(columns)
    return out


def fit_predict_baseline(
    name: str,
    features: pl.DataFrame,
    splits: dict,
    fold: int,
    horizons: Sequence[int],
    **kwargs: Any,
) -> pl.DataFrame:
    """Fit baseline ``name`` on the fold's train dates, predict its test dates (the `predictions`
    contract; keyword arguments as ``fit_predict_blocks``)."""
    return fit_predict_blocks(name, features, splits, fold, horizons, ("test",), **kwargs)["test"]


def _with_oracle(
    out: pl.DataFrame, oracle_alpha: pl.DataFrame | None, name: str, horizons: Sequence[int]
) -> pl.DataFrame:
    """``out`` with the planted alpha as ``pred_{h}d``: ``alpha_{h}d`` for ``oracle``,
    ``alpha_next_{h}d`` for ``oracle_next``."""
    if oracle_alpha is None:
        raise ValueError("baseline oracle: needs the oracle_alpha table (synthetic market only)")
    prefix = "alpha_next" if name == "oracle_next" else "alpha"
    alphas = [f"{prefix}_{h}d" for h in horizons]
    require_columns(oracle_alpha, ("Date", "Code", *alphas), name="oracle_alpha")
    preds = oracle_alpha.select(
        "Date",
        "Code",
        *(
            pl.col(a).cast(pl.Float64).alias(pred_col(h))
            for a, h in zip(alphas, horizons, strict=True)
        ),
    )
    return out.join(preds, on=["Date", "Code"], how="left")


def observed_inputs(table: pl.DataFrame, columns: Sequence[str], train: Sequence[str]) -> list[str]:
    """The columns with at least one finite value on the training dates (HistGradientBoosting
    cannot bin a column that is entirely missing, e.g. an optional table absent in early years)."""
    first, last = (date.fromisoformat(str(d)) for d in train)
    rows = table.filter(pl.col("Date").is_between(first, last))
    seen = rows.select(pl.col(c).cast(pl.Float64).is_finite().any() for c in columns).row(0)
    return [c for c, ok in zip(columns, seen, strict=True) if ok]


def baseline_predictions(
    table: pl.DataFrame,
    splits: dict,
    names: Sequence[str],
    inputs: Sequence[str],
    horizons: Sequence[int],
    *,
    seed: int,
    oracle_alpha: pl.DataFrame | None = None,
    cluster_peers: pl.DataFrame | None = None,
    label: str = DEFAULT_LABEL,
    model_inputs: Sequence[str] | None = None,
    max_train_rows: int = 300_000,
    n_threads: int | None = 1,
    blocks: Sequence[str] = ("val", "test"),
) -> dict[str, pl.DataFrame]:
    """Baselines ``names`` on every fold's ``blocks`` of dates ('val', 'test'), each fitted once
    on its fold's training dates; on the synthetic market also ``structural`` (``cluster_peers``:
    the peer family of the true clusters) and ``oracle`` / ``oracle_next`` (``oracle_alpha``).
    {block: the `predictions` table}, with ``label`` naming the target the learners were fitted to.

    ``table``: Date, Code, the model ``inputs`` and ``target_{h}d``, the return of ``label``.
    """
    tables = {name: table for name in names}
    if cluster_peers is not None and cluster_peers.height:
        tables["structural"] = with_peer_features(table, cluster_peers)
    if oracle_alpha is not None and oracle_alpha.height:
        tables["oracle"] = table
        if any(c.startswith("alpha_next_") for c in oracle_alpha.columns):
            tables["oracle_next"] = table
    frames: dict[str, list[pl.DataFrame]] = {block: [] for block in blocks}
    for fold_split in splits["folds"]:
        observed = observed_inputs(table, inputs, fold_split["train"])
        for name, data in tables.items():
            log.info("baseline %s: fold %s", name, fold_split["fold"])
            predicted = fit_predict_blocks(
                name,
                data,
                splits,
                int(fold_split["fold"]),
                horizons,
                blocks,
                feature_cols=baseline_inputs(name, observed, model_inputs),
                seed=seed,
                oracle_alpha=oracle_alpha if name.startswith("oracle") else None,
                max_train_rows=max_train_rows,
                n_threads=n_threads,
            )
            for block, frame in predicted.items():
                frames[block].append(frame)
    with_label = pl.lit(label, pl.Utf8).alias("label")
    return {
        block: pl.concat(parts, how="vertical").with_columns(with_label)
        for block, parts in frames.items()
    }
