"""The `evaluation` JSON: every metric of every model, per horizon, per fold and pooled.

Input: one `predictions` table per model label (``split_by_model`` makes them). Pooled means all
test days of all folds together (each day belongs to one fold). Bootstrap seeds are derived from
(seed, model label, horizon, fold) so a result does not depend on which other models are present.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, overload

import numpy as np
import polars as pl

from atft_kedro.errors import ParameterError
from atft_kedro.evaluation.backtest import Backtest, long_short_returns, performance, return_stats
from atft_kedro.evaluation.bootstrap import mean_ci, sharpe_ci
from atft_kedro.evaluation.metrics import daily_ic, decile_returns, ic_summary
from atft_kedro.evaluation.predictions import pred_col, require_unique_days, target_col
from atft_kedro.evaluation.realism import (
    PUBLISHED_BAND,
    realism_check,
    reversal_rank_ic,
    unchanged_close_share,
)
from atft_kedro.evaluation.turnover import RULE, BookConfig, controlled_book
from atft_kedro.evaluation.views import universe_size, view_predictions, views_of
from atft_kedro.features.labels import DEFAULT_LABEL

SCHEMES = ("quantile", "jpx")


@dataclass(frozen=True)
class EvaluationConfig:
    cost_bps: float = 10.0  # one-way cost per unit of turnover, basis points
    quantile: float = 0.1  # long/short fraction of the cross-section (quantile scheme)
    top_n: int = 200  # stocks per side (JPX scheme)
    min_stocks: int = 10  # fewer valid stocks on a day → the day is skipped
    n_boot: int = 2000  # bootstrap resamples
    mean_block: float = 10.0  # mean block length (days); raised to h for horizon h
    seed: int = 0

    @classmethod
    def from_params(cls, reporting: Mapping[str, Any], seed: int) -> EvaluationConfig:
        """From the `reporting` block (its other keys are read by the reporting nodes); an
        unknown key is a one-line ParameterError."""
        metrics = {f for f in cls.__dataclass_fields__ if f != "seed"}
        unknown = sorted(set(reporting) - metrics - REPORTING_KEYS)
        if unknown:
            known = sorted(metrics | REPORTING_KEYS)
            raise ParameterError(f"reporting: unknown key(s) {unknown}; known: {known}")
        return cls(**{k: v for k, v in reporting.items() if k in metrics}, seed=int(seed))


#: keys of the `reporting` block besides EvaluationConfig's fields
REPORTING_KEYS = {"horizons", "baselines", "max_train_rows", "threads", "published_band", "book"}


def _rng(cfg: EvaluationConfig, label: str, h: int, fold: object) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, zlib.crc32(f"{label}|{h}|{fold}".encode())])


def _backtest(preds: pl.DataFrame, h: int, scheme: str, cfg: EvaluationConfig):
    daily_target = target_col(1) if h > 1 and target_col(1) in preds.columns else None
    return long_short_returns(
        preds,
        pred_col(h),
        target_col(h),
        scheme=scheme,
        quantile=cfg.quantile,
        top_n=cfg.top_n,
        cost_bps=cfg.cost_bps,
        horizon=h,
        daily_target_col=daily_target,
        min_stocks=cfg.min_stocks,
    )


def evaluate_block(
    preds: pl.DataFrame, h: int, cfg: EvaluationConfig, rng: np.random.Generator
) -> dict:
    """All metrics of one model at horizon h on one set of days."""
    daily = daily_ic(preds, pred_col(h), target_col(h), cfg.min_stocks)
    block_len = max(cfg.mean_block, float(h))
    out: dict[str, Any] = ic_summary(daily)
    for col in ("ic", "rank_ic"):
        out[f"{col}_mean_ci95"] = mean_ci(
            daily.table[col].to_numpy(), block_len, cfg.n_boot, rng=rng
        )
    deciles = decile_returns(preds, pred_col(h), target_col(h))
    out["deciles"] = deciles["mean_return"].to_list()
    out["backtest"] = {}
    books = {scheme: _backtest(preds, h, scheme, cfg) for scheme in SCHEMES}
    for scheme, bt in books.items():
        net = bt.daily["net"].to_numpy()
        out["backtest"][scheme] = performance(bt) | {
            "method": bt.method,
            "periods_per_year": bt.periods_per_year,
            "net_sharpe_ci95": sharpe_ci(net, bt.periods_per_year, block_len, cfg.n_boot, rng=rng),
        }
    if h == 1:  # drawn last: the intervals above do not depend on it
        out["jpx_metric"] = jpx_metric(books["jpx"], block_len, cfg.n_boot, rng)
    return out


def jpx_metric(jpx: Backtest, mean_block: float, n_boot: int, rng: np.random.Generator) -> dict:
    """The JPX competition score of the ``jpx`` book at h = 1: mean / std of its daily gross
    return (half the competition's spread return, so the same ratio), not annualised, with its
    block-bootstrap CI95 (``score_ci95``) and the days it rests on."""
    gross = jpx.daily["gross"].to_numpy()
    stats = return_stats(gross, 1.0)
    return {
        "score": stats["daily_sharpe"],
        "score_ci95": sharpe_ci(gross, 1.0, mean_block, n_boot, rng=rng),
        "n_days": stats["n_days"],
    }


def evaluate(
    predictions_by_model: Mapping[str, pl.DataFrame],
    horizons: Sequence[int],
    cfg: EvaluationConfig | None = None,
    per_fold: bool = True,
) -> dict:
    """``{"config", "models": {label: {"h1": {"pooled": block, "folds": {"0": block}}}}}``.

    JSON-ready: tuples become lists and non-finite numbers become null. ``per_fold=False`` leaves
    ``folds`` empty (pooled days only: half the bootstrap work).
    """
    cfg = cfg or EvaluationConfig()
    models: dict[str, dict] = {}
    for label, preds in predictions_by_model.items():
        require_unique_days(preds, name=f"predictions[{label}]")
        per_h = {}
        for h in horizons:
            folds = (
                {
                    str(fold): evaluate_block(part, h, cfg, _rng(cfg, label, h, fold))
                    for (fold,), part in preds.sort("fold").group_by(["fold"], maintain_order=True)
                }
                if per_fold
                else {}
            )
            pooled = evaluate_block(preds, h, cfg, _rng(cfg, label, h, "pooled"))
            per_h[f"h{h}"] = {"pooled": pooled, "folds": folds}
        models[label] = per_h
    return json_safe({"config": asdict(cfg) | {"horizons": list(horizons)}, "models": models})


def daily_series(
    predictions_by_model: Mapping[str, pl.DataFrame],
    horizons: Sequence[int],
    cfg: EvaluationConfig | None = None,
) -> pl.DataFrame:
    """Long table for plots: model, horizon, Date, ic, rank_ic, {scheme}_{gross,net,turnover}.

    One row per prediction date (IC null on skipped days; returns on the backtest's dates).
    """
    cfg = cfg or EvaluationConfig()
    frames = []
    for label, preds in predictions_by_model.items():
        for h in horizons:
            frame = preds.select(pl.col("Date").unique().sort())
            frame = frame.join(
                daily_ic(preds, pred_col(h), target_col(h), cfg.min_stocks).table.drop("n"),
                on="Date",
                how="left",
            )
            for scheme in SCHEMES:
                bt = _backtest(preds, h, scheme, cfg).daily.select(
                    "Date",
                    *(pl.col(c).alias(f"{scheme}_{c}") for c in ("gross", "net", "turnover")),
                )
                frame = frame.join(bt, on="Date", how="left")
            frames.append(
                frame.select(pl.lit(label).alias("model"), pl.lit(h).alias("horizon"), pl.all())
            )
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()


@overload
def json_safe(obj: Mapping) -> dict: ...
@overload
def json_safe(obj: object) -> object: ...
def json_safe(obj: object) -> object:
    """Recursively: tuples → lists, numpy scalars → Python, NaN/±inf → None."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evaluation_document(
    by_model: Mapping[str, pl.DataFrame],
    labels: pl.DataFrame,
    panel: pl.DataFrame,
    horizons: Sequence[int],
    cfg: EvaluationConfig,
    band: tuple[float, float] = PUBLISHED_BAND,
    label: str = DEFAULT_LABEL,
    *,
    validation: Mapping[str, pl.DataFrame] | None = None,
    book: BookConfig | None = None,
) -> dict:
    """The `evaluation` JSON (docs/contracts.md): every model × horizon under the ``label``
    (next-session entry by default), per fold and pooled (``models``: the headline), under the
    other views, pooled (``views``), the realism check, the universe size per test day and its
    check against what the book needs, and the turnover-controlled book (``book``; needs h = 1).

    ``labels``: Date, Code, ret_1d and ``views.label_columns(horizons)`` (from ``model_input``);
    ``panel``: Date, Code, close (for the unchanged-close share); ``validation``: {model label:
    predictions on its folds' validation days} (the turnover control is chosen on them).
    """
    horizons, book = [int(h) for h in horizons], book or BookConfig()
    tables = views_of(by_model, labels, horizons, label)
    per_view = {
        view: evaluate(by_view, horizons, cfg, per_fold=view == label)["models"]
        for view, by_view in tables.items()
    }
    test_days = pl.concat([t.select("Date") for t in by_model.values()])["Date"].unique()
    reversal = reversal_rank_ic(labels, test_days, cfg.min_stocks, label)
    realism = realism_check(per_view, unchanged_close_share(panel), reversal, band, label)
    size = universe_size(labels.filter(pl.col("Date").is_in(test_days.implode())))
    document = {
        "config": asdict(cfg) | {"horizons": horizons},
        "label": label,
        "models": per_view.pop(label),
        "views": per_view,
        "realism": realism,
        "universe": {
            c: size[c].cast(pl.Utf8 if c == "Date" else pl.Int64).to_list() for c in size.columns
        },
        "universe_check": universe_check(size, cfg.quantile, book),
    }
    if validation is not None and 1 in horizons:
        val = {
            k: view_predictions(v, labels, label, horizons, label) for k, v in validation.items()
        }
        document["book"] = book_document(tables[label], val, cfg, book)
    return json_safe(document)


def book_document(
    test: Mapping[str, pl.DataFrame],
    validation: Mapping[str, pl.DataFrame],
    cfg: EvaluationConfig,
    book: BookConfig,
) -> dict:
    """The `book` block: the turnover-control grid, its rule, and per model with validation
    predictions for every test fold its ``turnover.controlled_book`` (pooled test days)."""
    models = {
        label: controlled_book(preds, validation.get(label), cfg, book, _rng(cfg, label, 1, "book"))
        for label, preds in test.items()
    }
    return {
        "horizon": 1,
        "scheme": "quantile",
        "cost_bps": cfg.cost_bps,
        "config": asdict(book),
        "rule": RULE.format(choose_by=book.choose_by),
        "models": {label: block for label, block in models.items() if block is not None},
    }


def universe_check(size: pl.DataFrame, quantile: float, book: BookConfig) -> dict:
    """Does the investable universe on test days hold what the book needs? ``size``: Date,
    stocks, investable (``universe_size``). The quantile book holds ``min_names_per_side`` names
    per side from ``needed`` = ⌈min_names_per_side / quantile⌉ stocks; fires when the median test
    day keeps fewer."""
    needed = math.ceil(book.min_names_per_side / quantile - 1e-9)
    investable = size["investable"]
    median = float(investable.median()) if size.height else math.nan  # type: ignore[arg-type]
    return {
        "needed": needed,
        "quantile": quantile,
        "min_names_per_side": book.min_names_per_side,
        "median": median,
        "stocks_median": float(size["stocks"].median()) if size.height else math.nan,  # type: ignore[arg-type]
        "min": int(investable.min()) if size.height else None,  # type: ignore[arg-type]
        "days_below": int((investable < needed).sum()),
        "days": size.height,
        "fired": bool(size.height and median < needed),
    }
