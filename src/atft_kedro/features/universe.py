"""The investable universe: the rows a strategy could trade at date t, from data known at t.

A row is investable when, at its session s,

    raw close(s)                                   >= price floor
    median(turnover over sessions s-w+1 .. s)      >= turnover floor    (w = turnover_window)
    tick(raw close(s)) / raw close(s)              <= max_tick_share

A session without a trade counts as zero turnover. Prices are the **raw** (unadjusted) close: the tick
schedule and a price floor apply to the quoted price, not to a split-adjusted one.

The floors are ``absolute`` (``min_price`` and ``min_turnover``, in yen: meaningful on TSE data) or
``relative`` to the market's own distribution on that day: the ``price_quantile`` of the day's raw
closes and the ``turnover_quantile`` of the day's median turnovers, over the stocks with a row that
day (point in time: the day's cross-section, each value known at its close). Yen floors on a market
quoted in another currency keep a handful of stocks or all of them; relative ones keep a share set
by the quantiles on any market. ``auto`` picks ``absolute`` when the closes sit on the TSE tick
grid and ``relative`` otherwise.

The tick is the TSE schedule for the quoted price (``tse``; TOPIX100 names trade on a finer grid,
so this is conservative for them) or the grid the data shows (``observed``: the smallest positive
price difference over the turnover window, ``observed_tick``). ``auto`` picks ``tse`` when the
data's closes sit on the TSE grid (J-Quants data) and ``observed`` otherwise (files from another
market, or the synthetic market's continuous prices).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError
from atft_kedro.features.returns_volatility import CODE, ROW, lag

log = logging.getLogger(__name__)

#: TSE tick sizes for ordinary issues: (price up to and including, tick), yen.
TSE_TICKS = (
    (3_000, 1.0),
    (5_000, 5.0),
    (30_000, 10.0),
    (50_000, 50.0),
    (300_000, 100.0),
    (500_000, 500.0),
    (3_000_000, 1_000.0),
    (5_000_000, 5_000.0),
    (30_000_000, 10_000.0),
    (50_000_000, 50_000.0),
    (math.inf, 100_000.0),
)
TICK_RULES = ("auto", "tse", "observed")
FLOOR_RULES = ("auto", "absolute", "relative")
#: per-row inputs of the relative floors, from the per-code stage to ``relative_floors``
PRICE, TURNOVER = "_universe_price", "_universe_turnover"
#: share of closes that must sit on the TSE grid for ``auto`` to choose it
ON_GRID_SHARE = 0.99


@dataclass(frozen=True)
class UniverseConfig:
    """Thresholds of the investable universe (``params:universe``); see the module docstring."""

    min_price: float = 100.0  # raw close, yen (absolute floors)
    min_turnover: float = 1.0e8  # median daily turnover (TurnoverValue), yen (absolute floors)
    turnover_window: int = 20  # sessions
    max_tick_share: float = 0.005  # tick / raw close
    tick: str = "auto"  # auto | tse | observed
    floors: str = "auto"  # auto | absolute | relative
    price_quantile: float = 0.05  # relative floors: quantile of the day's raw closes
    turnover_quantile: float = 0.2  # relative floors: quantile of the day's median turnovers

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> UniverseConfig:
        cfg = from_block(cls, params, "universe")
        if cfg.tick not in TICK_RULES:
            raise ParameterError(f"universe.tick: {cfg.tick!r}, want one of {list(TICK_RULES)}")
        if cfg.floors not in FLOOR_RULES:
            raise ParameterError(
                f"universe.floors: {cfg.floors!r}, want one of {list(FLOOR_RULES)}"
            )
        if cfg.turnover_window < 1:
            raise ParameterError(f"universe.turnover_window: {cfg.turnover_window}, want >= 1")
        for name in ("price_quantile", "turnover_quantile"):
            if not 0.0 <= getattr(cfg, name) < 1.0:
                raise ParameterError(f"universe.{name}: {getattr(cfg, name)}, want 0 <= q < 1")
        return cfg


def tse_tick(price: pl.Expr) -> pl.Expr:
    """The TSE tick size of a quoted price (null where the price is null)."""
    expr = pl.lit(TSE_TICKS[-1][1])
    for upper, tick in reversed(TSE_TICKS[:-1]):
        expr = pl.when(price <= upper).then(pl.lit(tick)).otherwise(expr)
    return pl.when(price.is_not_null()).then(expr)


def on_tse_grid_share(raw_close: pl.Series) -> float:
    """Share of positive closes that are a whole number of TSE ticks (within 1e-6 of a tick)."""
    frame = pl.DataFrame({"p": raw_close}).filter(pl.col("p") > 0)
    if frame.height == 0:
        return 0.0
    ticks = pl.col("p") / tse_tick(pl.col("p"))
    return float(frame.select(((ticks - ticks.round()).abs() < 1e-6).mean()).item())


def resolve_rules(cfg: UniverseConfig, raw_close: pl.Series) -> tuple[str, str]:
    """(tick rule, floors): ``cfg.tick`` and ``cfg.floors`` themselves, or for ``auto`` whether
    the closes sit on the TSE grid (``tse`` and ``absolute`` when they do, ``observed`` and
    ``relative`` otherwise)."""
    if "auto" not in (cfg.tick, cfg.floors):
        return cfg.tick, cfg.floors
    share = on_tse_grid_share(raw_close)
    on_grid = share >= ON_GRID_SHARE
    tick = cfg.tick if cfg.tick != "auto" else ("tse" if on_grid else "observed")
    floors = cfg.floors if cfg.floors != "auto" else ("absolute" if on_grid else "relative")
    log.info(
        "universe: %.1f%% of closes on the TSE tick grid -> tick rule %r, %s floors",
        100 * share,
        tick,
        floors,
    )
    return tick, floors


def resolve_tick_rule(cfg: UniverseConfig, raw_close: pl.Series) -> str:
    """``tse`` or ``observed`` (``resolve_rules``' tick rule)."""
    return resolve_rules(cfg, raw_close)[0]


def raw_close_expr(by: str = CODE) -> pl.Expr:
    """``_raw_close``: the quoted close (null unless positive) from the forward-adjusted one
    (``market.panel``: price / Π adj_factor), on a frame in date order within each ``by``."""
    factor = pl.col("adj_factor").fill_null(1.0).cum_prod().over(by)
    return pl.when(pl.col("close") > 0).then(pl.col("close") * factor).alias("_raw_close")


def observed_tick(window: int) -> pl.Expr:
    """The price grid the data shows: the smallest positive difference between any two of a bar's
    prices (open, high, low, close) or between consecutive closes, over the code's last ``window``
    sessions. On a grid it is a whole number of ticks (one tick, for any stock that moves); on
    continuous prices it is tiny. Computed on the cleaned bar (``prepare_bars``): a split scales
    prices and grid alike, so the ratio to the close is unchanged."""
    o, h, lo, c = (pl.col(x) for x in ("o", "h", "l", "c"))
    steps = [
        (c - lag(c, 1)).abs(),
        (o - c).abs(),
        (h - o).abs(),
        (o - lo).abs(),
        (h - c).abs(),
        (c - lo).abs(),
    ]
    smallest = pl.min_horizontal(pl.when(d > 1e-12 * c).then(d) for d in steps)
    return smallest.rolling_min(window, min_samples=1).over(CODE)


def investable_exprs(
    cfg: UniverseConfig, rule: str, floors: str, raw: str = "_raw_close"
) -> list[pl.Expr]:
    """``universe`` (Int8 0/1) on a frame sorted by (Code, Date) on the session grid (one row per
    session, the cleaned bar of ``prepare_bars``), with ``raw`` (quoted close, null without a
    trade); ``rule``: ``tse`` or ``observed``. With ``relative`` floors ``universe`` is the tick
    test alone, and ``PRICE`` and ``TURNOVER`` (Float64, NaN where unknown) carry the inputs of
    the floors to ``relative_floors``, which needs the whole day."""
    w = cfg.turnover_window
    price = pl.col(raw)
    turnover = pl.col("tv").fill_null(0.0)
    median_tv = pl.when(pl.col(ROW) >= w - 1).then(turnover.rolling_median(w, min_samples=w))
    if rule == "tse":
        share = tse_tick(price) / price
    else:
        share = observed_tick(w) / pl.col("c")
    ok = share <= cfg.max_tick_share
    if floors == "absolute":
        ok = (price >= cfg.min_price) & (median_tv >= cfg.min_turnover) & ok
        return [ok.fill_null(False).cast(pl.Int8).alias("universe")]
    nan = float("nan")
    return [
        ok.fill_null(False).cast(pl.Int8).alias("universe"),
        price.cast(pl.Float64).fill_null(nan).alias(PRICE),
        median_tv.cast(pl.Float64).fill_null(nan).alias(TURNOVER),
    ]


def relative_floors(frame: pl.DataFrame, cfg: UniverseConfig) -> pl.DataFrame:
    """``frame`` (a Date column, ``universe`` from the tick test, ``PRICE``, ``TURNOVER``) with
    ``universe`` = 1 only where the price and the median turnover are at or above that day's
    ``price_quantile`` and ``turnover_quantile`` (linear interpolation over the day's known
    values); ``PRICE`` and ``TURNOVER`` dropped."""
    price, turnover = pl.col(PRICE).fill_nan(None), pl.col(TURNOVER).fill_nan(None)
    price_floor = price.quantile(cfg.price_quantile, "linear").over("Date")
    turnover_floor = turnover.quantile(cfg.turnover_quantile, "linear").over("Date")
    ok = (pl.col("universe") == 1) & (price >= price_floor) & (turnover >= turnover_floor)
    return frame.with_columns(ok.fill_null(False).cast(pl.Int8).alias("universe")).drop(
        PRICE, TURNOVER
    )
