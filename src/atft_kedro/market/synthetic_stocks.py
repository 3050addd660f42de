"""Per-code simulation of the synthetic market for one chunk of codes.

The chunk's random draws come from fixed-size blocks of ``BLOCK`` codes, each with its own
generator (spawned from the seed), so a code's path does not depend on how codes are chunked.
Arrays are ``[T, N]`` (timeline days x codes of the chunk); prices are yen, returns are log.

Returns of day ``t`` (close ``t-1`` to close ``t``)::

    r(t) = alpha_1d(t-1) + beta * m(t) + l * s_sector(t) + g_cluster(t) + sigma(t) * z(t)
           + earnings_jump_vol * surprise (on a statement's effective day)

with ``sigma(t)`` a GARCH(1,1) around the code's idiosyncratic vol (higher when stressed) and
``z`` unit-variance Student-t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import polars as pl

from atft_kedro.market.synthetic_alpha import (
    AlphaInputs,
    alpha_components,
    forward_components,
    planted_alpha,
)
from atft_kedro.market.synthetic_config import (
    ALPHA_COMPONENTS,
    HORIZONS,
    SESSIONS_PER_YEAR,
    SyntheticMarketConfig,
)
from atft_kedro.market.synthetic_factors import MarketState, student_t
from atft_kedro.market.synthetic_universe import Universe

BLOCK = 64  # codes per random-number block (fixed: chunking never changes the draws)
SPLIT_FACTORS = np.array([0.5, 1 / 3, 0.25, 0.2, 0.1])  # 1:2, 1:3, 1:4, 1:5, 1:10
SPLIT_PROBS = np.array([0.6, 0.15, 0.15, 0.05, 0.05])
DISCLOSURE_TIMES = np.array(
    ["11:30:00", "13:00:00", "14:00:00", "15:00:00", "15:30:00", "16:00:00"]
)
DISCLOSURE_TIME_PROBS = np.array([0.05, 0.10, 0.10, 0.40, 0.25, 0.10])
MARKET_CLOSE = "15:00:00"  # disclosures at or after this take effect the next session
PERIOD_TYPES = np.array(["FY", "1Q", "2Q", "3Q"])  # by quarters since fiscal year end
PROFIT_SURPRISE = 0.4  # quarterly profit deviation from forecast / 4 per unit surprise


@dataclass(frozen=True)
class Draws:
    """Raw random draws of a chunk: ``[T, N]`` per day, ``[Q, N]`` per quarter, ``[N]`` per code."""

    z: np.ndarray
    open_noise: np.ndarray
    high_noise: np.ndarray
    low_noise: np.ndarray
    volume_shock: np.ndarray
    turnover_noise: np.ndarray
    u_zero: np.ndarray
    u_split: np.ndarray
    split_kind: np.ndarray
    u_suspend: np.ndarray
    suspend_len: np.ndarray
    surprise: np.ndarray
    lag: np.ndarray
    time_kind: np.ndarray
    sales_noise: np.ndarray
    plan_noise: np.ndarray
    sales_to_cap: np.ndarray
    margin: np.ndarray
    growth: np.ndarray
    asset_ratio: np.ndarray
    equity_ratio: np.ndarray


def draw_chunk(
    cfg: SyntheticMarketConfig, seeds: list[np.random.SeedSequence], n_t: int, n_q: int, n: int
) -> Draws:
    """Draw every random input of ``n`` codes from their blocks' seeds (in a fixed order)."""
    parts: list[dict[str, np.ndarray]] = []
    for seed in seeds:
        rng = np.random.Generator(np.random.PCG64(seed))
        day, qtr = (n_t, BLOCK), (n_q, BLOCK)
        parts.append(
            {
                "z": student_t(rng, cfg.idio_t_dof, day),
                "open_noise": rng.standard_normal(day),
                "high_noise": np.abs(rng.standard_normal(day)),
                "low_noise": np.abs(rng.standard_normal(day)),
                "volume_shock": student_t(rng, cfg.volume_t_dof, day),
                "turnover_noise": rng.standard_normal(day),
                "u_zero": rng.random(day),
                "u_split": rng.random(day),
                "split_kind": rng.choice(len(SPLIT_FACTORS), size=day, p=SPLIT_PROBS),
                "u_suspend": rng.random(day),
                "suspend_len": rng.geometric(1.0 / cfg.suspension_mean_days, size=day),
                "surprise": rng.standard_normal(qtr),
                "lag": rng.integers(0, 15, size=qtr),
                "time_kind": rng.choice(len(DISCLOSURE_TIMES), size=qtr, p=DISCLOSURE_TIME_PROBS),
                "sales_noise": rng.standard_normal(qtr),
                "plan_noise": rng.standard_normal(qtr),
                "sales_to_cap": rng.uniform(0.3, 1.5, BLOCK),
                "margin": rng.normal(0.05, 0.03, BLOCK),
                "growth": rng.normal(0.03, 0.06, BLOCK),
                "asset_ratio": rng.uniform(0.8, 2.0, BLOCK),
                "equity_ratio": rng.uniform(0.25, 0.65, BLOCK),
            }
        )
    return Draws(**{k: np.concatenate([p[k] for p in parts], axis=-1)[..., :n] for k in parts[0]})


@dataclass(frozen=True)
class Statements:
    """Quarterly statements of a chunk: the table and the surprise on each effective day."""

    frame: pl.DataFrame  # EarningsPerShare still per pre-split share (see `per_share`)
    surprise: np.ndarray  # [T, N]
    day: np.ndarray  # [rows] timeline index of each disclosure
    code: np.ndarray  # [rows] chunk column of each disclosure

    def per_share(self, shares: np.ndarray) -> pl.DataFrame:
        """The frame with EarningsPerShare over ``shares [T, N]`` outstanding on the day."""
        eps = self.frame["Profit"].to_numpy() / shares[self.day, self.code]
        return self.frame.with_columns(EarningsPerShare=np.round(eps, 2))


@dataclass(frozen=True)
class Chunk:
    """Codes ``cols`` of the universe, simulated on the whole timeline, emitted on ``[first, last)``."""

    cfg: SyntheticMarketConfig
    u: Universe
    state: MarketState
    cols: slice
    first: int
    last: int
    flow_scale: float  # RMS of the known weekly flows (normalises the flow alpha)

    @property
    def n(self) -> int:
        return self.cols.stop - self.cols.start

    @property
    def tt(self) -> np.ndarray:
        """``[T, 1]`` timeline index, to broadcast against ``[N]`` per-code arrays."""
        return np.arange(len(self.state.dates))[:, None]

    def listed(self) -> np.ndarray:
        """``[T, N]`` bool: listed on day t."""
        return (self.tt >= self.u.list_day[self.cols]) & (self.tt < self.u.delist_day[self.cols])


def simulate_statements(c: Chunk, listed: np.ndarray, d: Draws) -> Statements:
    """Quarterly, cumulative (year-to-date) results with full-year forecasts, J-Quants style.

    Quarter ``k`` of code ``i`` ends a multiple of 3 months after its fiscal year end and is
    disclosed 30-50 days later; its profit deviates from a quarter of the forecast by
    ``PROFIT_SURPRISE * surprise``, and the forecast is revised by half of that deviation.
    """
    u, cols, dates = c.u, c.cols, c.state.dates
    n_q, n = d.surprise.shape
    months = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    fy_end = u.fiscal_end_month[cols] - 1  # 0-based month of the fiscal year end
    m0 = months[c.first] - 4
    first_qe = m0 + (fy_end - m0) % 3
    quarter_month = first_qe[None, :] + 3 * np.arange(n_q)[:, None]  # [Q, N]
    kind = ((quarter_month - fy_end[None, :]) // 3) % 4  # 0 FY, 1 1Q, 2 2Q, 3 3Q
    quarter_end = (quarter_month + 1).astype("datetime64[M]").astype("datetime64[D]") - 1
    lag = np.where(kind == 0, 40, 30) + d.lag  # calendar days
    disclosed = quarter_end + lag.astype("timedelta64[D]")
    day = np.searchsorted(dates, disclosed)  # first session on or after disclosure
    time = DISCLOSURE_TIMES[d.time_kind]
    effective = day + (time >= MARKET_CLOSE)
    inside = (day >= c.first) & (day < c.last)
    code_idx = np.broadcast_to(np.arange(n), day.shape)
    valid = inside & listed[np.clip(day, 0, len(dates) - 1), code_idx]

    fields = _fundamentals(u.shares[cols] * u.price[cols], kind, d)
    qi, ci = np.nonzero(valid)
    profit = fields["profit"][qi, ci]
    assets = fields["assets"][qi, ci]
    operating = profit / 0.68 / 1.04  # pre-tax, pre-non-operating
    frame = pl.DataFrame(
        {
            "DisclosedDate": dates[day[qi, ci]],
            "DisclosedTime": time[qi, ci],
            "Code": u.codes[cols][ci],
            "TypeOfCurrentPeriod": PERIOD_TYPES[kind[qi, ci]],
            "NetSales": np.round(fields["sales"][qi, ci]),
            "OperatingProfit": np.round(operating),
            "OrdinaryProfit": np.round(operating * 1.04),
            "Profit": np.round(profit),
            "EarningsPerShare": np.round(profit / u.shares[cols][ci], 2),
            "TotalAssets": np.round(assets),
            "Equity": np.round(assets * d.equity_ratio[ci]),
            "ForecastNetSales": np.round(fields["f_sales"][qi, ci]),
            "ForecastOperatingProfit": np.round(fields["f_profit"][qi, ci] / 0.68 / 1.04),
            "ForecastProfit": np.round(fields["f_profit"][qi, ci]),
        }
    ).with_columns(pl.col("DisclosedDate").cast(pl.Date))

    surprise = np.zeros((len(dates), n))
    live = valid & (effective < len(dates))
    np.add.at(surprise, (effective[live], code_idx[live]), d.surprise[live])
    return Statements(frame=frame, surprise=surprise, day=day[qi, ci], code=ci)


def _fundamentals(cap: np.ndarray, kind: np.ndarray, d: Draws) -> dict[str, np.ndarray]:
    """``[Q, N]`` year-to-date sales and profit, forecasts and assets: a recursion over quarters."""
    n_q, n = kind.shape
    margin, growth = d.margin, d.growth
    plan_sales = cap * d.sales_to_cap
    plan_profit = plan_sales * margin
    ytd_sales, ytd_profit = np.zeros(n), np.zeros(n)
    fields = {k: np.zeros((n_q, n)) for k in ("sales", "profit", "f_sales", "f_profit", "assets")}
    for k in range(n_q):  # quarters: ~4 a year, vectorised over codes
        ytd_sales = np.where(kind[k] == 1, 0.0, ytd_sales)
        ytd_profit = np.where(kind[k] == 1, 0.0, ytd_profit)
        sales_q = plan_sales / 4 * np.exp(0.03 * d.sales_noise[k])
        profit_q = plan_profit / 4 + PROFIT_SURPRISE * np.abs(plan_profit) / 4 * d.surprise[k]
        ytd_sales, ytd_profit = ytd_sales + sales_q, ytd_profit + profit_q
        year_end = kind[k] == 0
        next_sales = ytd_sales * np.exp(growth + 0.05 * d.plan_noise[k])
        plan_sales = np.where(year_end, next_sales, plan_sales)
        plan_profit = np.where(
            year_end,
            plan_sales * margin * np.exp(0.1 * d.plan_noise[k]),
            plan_profit + 0.5 * (profit_q - plan_profit / 4),
        )
        fields["sales"][k], fields["profit"][k] = ytd_sales, ytd_profit
        fields["f_sales"][k], fields["f_profit"][k] = plan_sales, plan_profit
        fields["assets"][k] = plan_sales * d.asset_ratio
    return fields


@dataclass(frozen=True)
class ChunkResult:
    """Per-code tables of a chunk and its contribution to the cap-weighted index."""

    tables: dict[str, pl.DataFrame]
    index_sums: np.ndarray  # [5, T]: sum of cap(t-1) x (open, high, low, close) return; cap(t-1)


@dataclass(frozen=True)
class Paths:
    """``[T, N]`` economic (split-free) price paths of a chunk and what drove them."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    z: np.ndarray  # unit idiosyncratic shock
    stress: np.ndarray  # [T] idiosyncratic-vol multiplier of the regime
    volume_ar: np.ndarray  # AR(1) volume shock
    forward: dict[int, dict[str, np.ndarray]]  # E_t[log return over h days] per component

    def oracle(self, h: int) -> np.ndarray:
        """``alpha_hd``: E_t[log close(t+h) / close(t)], every component together."""
        return cast(np.ndarray, sum(self.forward[h][k] for k in ALPHA_COMPONENTS))

    def oracle_next(self, h: int) -> np.ndarray:
        """``alpha_next_hd``: E_t[log close(t+1+h) / close(t+1)] = alpha_{h+1} - alpha_1."""
        return self.oracle(h + 1) - self.oracle(1)


def simulate_chunk(c: Chunk, seeds: list[np.random.SeedSequence]) -> ChunkResult:
    """Simulate the chunk's codes over the timeline; tables hold days ``[first, last)``."""
    n_t = len(c.state.dates)
    n_q = int(np.ceil(n_t / SESSIONS_PER_YEAR * 4)) + 4
    d = draw_chunk(c.cfg, seeds, n_t, n_q, c.n)
    listed = c.listed()
    stmts = simulate_statements(c, listed, d)
    p = simulate_paths(c, d, stmts.surprise)
    present, zero, factor = _frictions(c, d, listed)
    cum_factor = np.cumprod(factor, axis=0)  # prod of factors with ex-date <= t

    ti, ci = np.nonzero(present)
    quotes = _quotes(c, p, d, (ti, ci), zero, factor)
    keys = {"Date": quotes["Date"], "Code": quotes["Code"]}
    tables = {
        "daily_quotes": quotes,
        "statements": stmts.per_share(c.u.shares[c.cols] / cum_factor),
        "oracle_alpha": pl.DataFrame(
            {
                **keys,
                **{f"alpha_{h}d": p.oracle(h)[ti, ci] for h in HORIZONS},
                **{f"alpha_next_{h}d": p.oracle_next(h)[ti, ci] for h in HORIZONS},
            }
        ),
        "alpha_components": pl.DataFrame({**keys, **_component_columns(p, (ti, ci))}),
    }
    return ChunkResult(tables=tables, index_sums=_index_sums(c, p, listed))


def _component_columns(p: Paths, rows: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Each component's part of ``alpha_1d`` (``{name}_1d``, close to close) and of
    ``alpha_next_1d`` (``{name}_next_1d``, next-session entry) at the emitted rows.

    The one-day effects (lead-lag, reversal) depend on day t's own shocks, so their next-session
    parts are 0: whatever they predict is gone by the session after the signal.
    """
    columns = {}
    for k in ALPHA_COMPONENTS:
        columns[f"{k}_1d"] = p.forward[1][k][rows]
        columns[f"{k}_next_1d"] = (p.forward[2][k] - p.forward[1][k])[rows]
    return columns


def simulate_paths(c: Chunk, d: Draws, surprise: np.ndarray) -> Paths:
    """Volatility, planted alpha and the economic OHLC paths (module docstring's return model)."""
    cfg, u, state, cols = c.cfg, c.u, c.state, c.cols
    n_t = len(state.dates)
    t = np.arange(n_t)
    stress = 1.0 + (cfg.stressed_idio_multiplier - 1.0) * state.regime
    sigma, volume_ar = _garch(cfg, d)
    sigma *= u.idio_vol[cols] * stress[:, None]

    inputs = AlphaInputs(
        cluster_shock=state.cluster[:, u.cluster[cols]] / cfg.cluster_vol,
        idio_shock=d.z,
        regime=state.regime,
        surprise=surprise,
        flow=np.take_along_axis(state.flow_in_effect(), u.market_at(t, cols), axis=1)
        / c.flow_scale,
        flow_week=state.flow_week,
    )
    alpha = planted_alpha(alpha_components(inputs, cfg), cfg)
    forward = forward_components(
        inputs, cfg, tuple(sorted({*HORIZONS, *(h + 1 for h in HORIZONS)}))
    )

    sector = u.sector_at(t, cols)
    r = np.zeros((n_t, c.n))
    r[1:] = (
        alpha[:-1]
        + u.beta[cols] * state.market[1:, None]
        + u.sector_loading[cols] * np.take_along_axis(state.sector[1:], sector[1:], axis=1)
        + inputs.cluster_shock[1:] * cfg.cluster_vol
        + sigma[1:] * d.z[1:]
        + cfg.earnings_jump_vol * surprise[1:]
    )
    log_close = np.cumsum(r, axis=0)
    list_day = np.clip(u.list_day[cols], 0, n_t - 1)
    log_close += np.log(u.price[cols]) - log_close[list_day, np.arange(c.n)]
    close = np.exp(log_close)
    prev_close = np.vstack([close[:1], close[:-1]])
    overnight = 0.3 * r + 0.25 * sigma * d.open_noise
    open_ = prev_close * np.exp(overnight)
    high = np.maximum(open_, close) * np.exp(0.5 * sigma * d.high_noise)
    low = np.minimum(open_, close) * np.exp(-0.5 * sigma * d.low_noise)
    return Paths(open_, high, low, close, d.z, stress, volume_ar, forward)


def _garch(cfg: SyntheticMarketConfig, d: Draws) -> tuple[np.ndarray, np.ndarray]:
    """``[T, N]`` GARCH(1,1) vol multiplier of the idiosyncratic shock and the AR(1) volume shock."""
    a, b = cfg.idio_garch_alpha, cfg.idio_garch_beta
    n_t, n = d.z.shape
    sigma, volume_ar = np.empty((n_t, n)), np.empty((n_t, n))
    h, e, v = np.ones(n), np.zeros(n), np.zeros(n)
    for i in range(n_t):  # recursion over days, vectorised over codes
        h = (1 - a - b) + a * e**2 + b * h
        e = np.sqrt(h) * d.z[i]
        v = 0.7 * v + np.sqrt(1 - 0.49) * d.volume_shock[i]
        sigma[i], volume_ar[i] = np.sqrt(h), v
    return sigma, volume_ar


def _frictions(c: Chunk, d: Draws, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[T, N]`` rows present (listed, emitted, not suspended), zero-volume days, split factors."""
    cfg, tt = c.cfg, c.tt
    emitted = (tt >= c.first) & (tt < c.last)
    after_listing = tt > c.u.list_day[c.cols]
    start = (d.u_suspend < cfg.suspension_rate / SESSIONS_PER_YEAR) & listed & after_listing
    start &= emitted
    resume = np.maximum.accumulate(np.where(start, tt + d.suspend_len, -1), axis=0)
    present = listed & emitted & ~(resume > tt)
    growth = c.u.market_at(np.arange(len(c.state.dates)), c.cols) == 2
    zero = d.u_zero < cfg.zero_volume_prob * np.where(growth, 5.0, 1.0)
    ex_date = (d.u_split < cfg.split_rate / SESSIONS_PER_YEAR) & present & after_listing
    ex_date &= (tt > c.first) & ~zero
    zero &= present & after_listing & ~ex_date
    factor = np.where(ex_date, SPLIT_FACTORS[d.split_kind], 1.0)
    return present, zero, factor


def _quotes(
    c: Chunk,
    p: Paths,
    d: Draws,
    rows: tuple[np.ndarray, np.ndarray],
    zero: np.ndarray,
    factor: np.ndarray,
) -> pl.DataFrame:
    """J-Quants daily quotes of the present rows: quoted (split-unadjusted) and adjusted prices."""
    u, cols = c.u, c.cols
    ti, ci = rows
    cum_factor = np.cumprod(factor, axis=0)  # prod of factors with ex-date <= t
    to_latest = cum_factor[-1] / cum_factor  # prod of factors with ex-date > t
    unadj = {
        name: np.round(x * cum_factor, 1)
        for name, x in (("Open", p.open), ("High", p.high), ("Low", p.low), ("Close", p.close))
    }
    unadj["High"] = np.maximum.reduce([unadj["High"], unadj["Open"], unadj["Close"]])
    unadj["Low"] = np.minimum.reduce([unadj["Low"], unadj["Open"], unadj["Close"]])
    base_volume = u.turnover[cols] * u.shares[cols]
    econ_volume = base_volume * np.exp(
        0.5 * p.volume_ar + 0.6 * np.abs(p.z) + 0.4 * p.stress[:, None]
    )
    volume = np.where(zero, 0.0, np.maximum(100.0, np.round(econ_volume / cum_factor, -2)))
    typical = (unadj["Open"] + unadj["High"] + unadj["Low"] + 2 * unadj["Close"]) / 5
    turnover = np.round(volume * typical * np.exp(0.002 * d.turnover_noise))

    traded = ~zero[ti, ci]

    def px(x: np.ndarray) -> np.ndarray:
        return np.where(traded, x[ti, ci], np.nan)

    adj = to_latest[ti, ci]
    return pl.DataFrame(
        {
            "Date": c.state.dates[ti],
            "Code": u.codes[cols][ci],
            **{name: px(x) for name, x in unadj.items()},
            "Volume": volume[ti, ci],
            "TurnoverValue": turnover[ti, ci],
            "AdjustmentFactor": factor[ti, ci],
            **{f"Adjustment{name}": px(x) * adj for name, x in unadj.items()},
            "AdjustmentVolume": volume[ti, ci] / adj,
        }
    ).with_columns(
        pl.col("Date").cast(pl.Date),
        pl.col("Open", "High", "Low", "Close").fill_nan(None),
        pl.col("^Adjustment(Open|High|Low|Close)$").fill_nan(None),
    )


def _index_sums(c: Chunk, p: Paths, listed: np.ndarray) -> np.ndarray:
    """``[5, T]`` the chunk's part of the cap-weighted index: econ caps listed on t-1 and t."""
    n_t = len(c.state.dates)
    cap_prev = np.where(listed[1:] & listed[:-1], c.u.shares[c.cols] * p.close[:-1], 0.0)
    index_sums = np.zeros((5, n_t))
    for k, x in enumerate((p.open, p.high, p.low, p.close)):
        index_sums[k, 1:] = (cap_prev * (x[1:] / p.close[:-1] - 1.0)).sum(axis=1)
    index_sums[4, 1:] = cap_prev.sum(axis=1)
    return index_sums
