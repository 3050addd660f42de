"""Turnover control of the long-short book, chosen on validation days.

A desk does not replace its book every day: 10 bps on a turnover of 1.2 a day costs 30% a year, and
a signal whose edge lasts several sessions loses little when it is traded slowly. Two controls act
on the quantile book at h = 1 (``backtest.portfolio_weights``: equal weights ±0.5/k in the top and
bottom k = ⌊quantile·n⌋ stocks, earning the label's 1-day return):

* **signal smoothing**: a stock's score is the exponential moving average over sessions of its
  per-day cross-sectional rank of the prediction, s(t) in [−0.5, 0.5]:
  e(t) = a·s(t) + (1 − a)·e(t−1), a = 1 − 2^(−1/half_life), half-life in sessions (0: off, the raw
  prediction). Causal: e(t) reads s(0..t) only. A stock without a prediction on day t holds no
  position that day and keeps its e; a stock seen for the first time starts at e = s.
* **rebalancing every k sessions**: the book formed on the first session of each block of k (counted
  from the first day of the fold's block) is held through the block; k = 1 rebalances daily.

For every model and fold each setting of the grid (``half_lives`` × ``rebalance_every``) is
backtested on the fold's validation days after ``cost_bps``; the one with the highest validation
``choose_by`` (ties: the earlier, less controlled setting) is applied to the fold's test days. Test
days never enter the choice. Smoothing and holding restart at the first day of each fold's block
(validation and test are separated by the purge and embargo, test blocks of two folds by months).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError
from atft_kedro.evaluation.backtest import (
    TRADING_DAYS,
    book_daily,
    dense_grid,
    portfolio_weights,
    return_stats,
)
from atft_kedro.evaluation.bootstrap import sharpe_ci
from atft_kedro.evaluation.predictions import pred_col, target_col

if TYPE_CHECKING:
    from atft_kedro.evaluation.evaluate import EvaluationConfig

CHOOSE_BY = ("net_sharpe", "net_return")
RULE = (
    "per model and fold, the setting with the highest {choose_by} of the quantile book at h = 1 "
    "after costs on the fold's validation days (ties: less smoothing, then more frequent "
    "rebalancing), applied to the fold's test days"
)


@dataclass(frozen=True)
class BookConfig:
    """The `reporting.book` block: the turnover-control grid and how a setting is chosen."""

    half_lives: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0)  # sessions; 0 = no smoothing
    rebalance_every: tuple[int, ...] = (1, 2, 5)  # sessions between rebalances; 1 = daily
    choose_by: str = "net_sharpe"  # net_sharpe | net_return (annualised), on validation days
    min_names_per_side: int = 10  # universe warning below ⌈min_names_per_side / quantile⌉ stocks

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> BookConfig:
        """Parse and check the block (one-line ParameterError on a bad value)."""
        raw = from_block(cls, params, "reporting.book")
        cfg = cls(
            tuple(float(h) for h in raw.half_lives),
            tuple(int(k) for k in raw.rebalance_every),
            raw.choose_by,
            int(raw.min_names_per_side),
        )
        if not cfg.half_lives or min(cfg.half_lives) < 0:
            raise ParameterError(f"reporting.book.half_lives: {list(cfg.half_lives)}, want >= 0")
        if not cfg.rebalance_every or min(cfg.rebalance_every) < 1:
            raise ParameterError(
                f"reporting.book.rebalance_every: {list(cfg.rebalance_every)}, want >= 1"
            )
        if cfg.choose_by not in CHOOSE_BY:
            raise ParameterError(
                f"reporting.book.choose_by: {cfg.choose_by!r}, want one of {list(CHOOSE_BY)}"
            )
        return cfg


@dataclass(frozen=True)
class Setting:
    half_life: float = 0.0  # sessions; 0 = the raw prediction
    rebalance_every: int = 1  # sessions


RAW = Setting()


def grids(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The table's sorted dates (Date, t) and codes (Code, i)."""
    dates = table.select(pl.col("Date").unique().sort()).with_row_index("t")
    codes = table.select(pl.col("Code").unique().sort()).with_row_index("i")
    return dates, codes


def ema_over_days(s: np.ndarray, half_life: float) -> np.ndarray:
    """Causal EMA along days of ``s`` [T, N] (NaN: no signal that day) → [T, N], NaN where s is."""
    a = 1.0 - 0.5 ** (1.0 / half_life)
    out = np.full_like(s, np.nan, dtype=np.float64)
    state = np.full(s.shape[1], np.nan)
    for t in range(s.shape[0]):  # one step per day, vectorised over stocks
        x = s[t]
        seen = np.isfinite(x)
        blended = np.where(np.isfinite(state), a * x + (1.0 - a) * state, x)
        state = np.where(seen, blended, state)
        out[t] = np.where(seen, state, np.nan)
    return out


def smoothed(preds: pl.DataFrame, pred: str, half_life: float) -> pl.DataFrame:
    """``preds`` with ``pred`` replaced by the EMA (half-life in sessions, over the table's dates)
    of its per-day rank in [−0.5, 0.5]; ``half_life`` 0 returns ``preds`` unchanged."""
    if half_life <= 0:
        return preds
    p = pl.col(pred).cast(pl.Float64)
    p = pl.when(p.is_finite()).then(p)
    n = p.count().over("Date")
    rank = pl.when(n > 1).then((p.rank("average").over("Date") - 1) / (n - 1) - 0.5).otherwise(0.0)
    ranked = preds.select("Date", "Code", s=pl.when(p.is_not_null()).then(rank))
    dates, codes = grids(preds)
    e = ema_over_days(dense_grid(ranked, "s", dates, codes, np.nan), half_life)  # [T, N]
    at = preds.select("Date", "Code").join(dates, on="Date", how="left", maintain_order="left")
    at = at.join(codes, on="Code", how="left", maintain_order="left")
    score = e[at["t"].to_numpy(), at["i"].to_numpy()]
    return preds.with_columns(pl.Series(pred, score, dtype=pl.Float64))


def hold_every(w: np.ndarray, k: int) -> np.ndarray:
    """Weights [T, N] rebalanced every ``k`` days: day t holds the book of day k·⌊t/k⌋."""
    return w[(np.arange(w.shape[0]) // k) * k]


def daily_weights(
    preds: pl.DataFrame,
    half_life: float,
    cfg: EvaluationConfig,
    dates: pl.DataFrame,
    codes: pl.DataFrame,
) -> np.ndarray:
    """The quantile book at h = 1 of the (smoothed) prediction, rebalanced daily → w [T, N]."""
    scored = smoothed(preds, pred_col(1), half_life)
    weights = portfolio_weights(
        scored,
        pred_col(1),
        target_col(1),
        scheme="quantile",
        quantile=cfg.quantile,
        min_stocks=cfg.min_stocks,
    )
    return dense_grid(weights, "weight", dates, codes, 0.0)


def validation_grid(
    val: pl.DataFrame, cfg: EvaluationConfig, book: BookConfig
) -> list[dict[str, float]]:
    """One row per setting of the grid on one fold's validation days: half_life,
    rebalance_every, net_sharpe (annualised), net_return (annualised), avg_turnover (per day)."""
    dates, codes = grids(val)
    r = dense_grid(val, target_col(1), dates, codes, np.nan)
    rows = []
    for half_life in book.half_lives:
        w_daily = daily_weights(val, half_life, cfg, dates, codes)
        for k in book.rebalance_every:
            daily = book_daily(hold_every(w_daily, k), r, dates, cfg.cost_bps)
            stats = return_stats(daily["net"].to_numpy(), TRADING_DAYS)
            rows.append(
                asdict(Setting(half_life, k))
                | {
                    "net_sharpe": stats["sharpe"],
                    "net_return": stats["annual_return"],
                    "avg_turnover": float(daily["turnover"].mean()),  # type: ignore[arg-type]
                }
            )
    return rows


def choose(rows: list[dict[str, float]], choose_by: str) -> Setting:
    """The first row with the highest finite ``choose_by`` (the raw book when none is finite)."""
    best, best_value = RAW, -math.inf
    for row in rows:
        value = row[choose_by]
        if value is not None and math.isfinite(value) and value > best_value:
            best, best_value = Setting(row["half_life"], int(row["rebalance_every"])), value
    return best


def book_on_test_days(
    test: pl.DataFrame, chosen: Mapping[int, Setting], cfg: EvaluationConfig
) -> pl.DataFrame:
    """The pooled test-day book, each fold with its setting → ``book_daily`` over all test dates
    (folds in date order; the book carries over from one fold's last day to the next's first)."""
    _, codes = grids(test)
    order = sorted(chosen, key=lambda f: test.filter(pl.col("fold") == f)["Date"].min())  # type: ignore[arg-type,return-value]
    weights, dates = [], []
    for fold in order:
        part = test.filter(pl.col("fold") == fold)
        fold_dates, _ = grids(part)
        w = daily_weights(part, chosen[fold].half_life, cfg, fold_dates, codes)
        weights.append(hold_every(w, chosen[fold].rebalance_every))
        dates.append(fold_dates.drop("t"))
    pooled = pl.concat(dates).with_row_index("t")
    r = dense_grid(test, target_col(1), pooled, codes, np.nan)
    return book_daily(np.concatenate(weights, axis=0), r, pooled, cfg.cost_bps)


def controlled_book(
    test: pl.DataFrame,
    val: pl.DataFrame | None,
    cfg: EvaluationConfig,
    book: BookConfig,
    rng: np.random.Generator,
) -> dict[str, Any] | None:
    """One model's controlled book: ``{"folds": {fold: {"chosen", "validation"}}, "gross",
    "net" (return_stats with avg_turnover), "net_sharpe_ci95"}`` on pooled test days; None when
    a test fold has no validation predictions. ``test``/``val``: `predictions` tables with
    ``pred_1d`` and ``target_1d`` (the label's 1-day return)."""
    folds = sorted(test["fold"].unique().to_list())
    if val is None or not set(folds) <= set(val["fold"].unique().to_list()):
        return None
    per_fold, chosen = {}, {}
    for fold in folds:
        rows = validation_grid(val.filter(pl.col("fold") == fold), cfg, book)
        chosen[fold] = choose(rows, book.choose_by)
        per_fold[str(fold)] = {"chosen": asdict(chosen[fold]), "validation": rows}
    daily = book_on_test_days(test, chosen, cfg)
    turnover = float(daily["turnover"].mean()) if daily.height else math.nan  # type: ignore[arg-type]
    stats = {
        kind: return_stats(daily[kind].to_numpy(), TRADING_DAYS) | {"avg_turnover": turnover}
        for kind in ("gross", "net")
    }
    block = max(cfg.mean_block, 1.0)
    ci = sharpe_ci(daily["net"].to_numpy(), TRADING_DAYS, block, cfg.n_boot, rng=rng)
    return {"folds": per_fold, **stats, "net_sharpe_ci95": ci}
