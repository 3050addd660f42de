"""Market-wide state of the synthetic market: regimes, market/sector/cluster factors, flows.

Shapes use ``T`` = timeline length (burn-in + emitted sessions + tail), ``C`` = latent clusters,
``W`` = weeks. All returns are daily log returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.market.synthetic_config import SyntheticMarketConfig
from atft_kedro.market.taxonomy import MARKET_SECTIONS

INVESTOR_TYPES = ("Proprietary", "Individuals", "Foreigners", "InvestmentTrusts", "TrustBanks")
PUBLICATION_LAG = 4  # sessions from a week's last session to its publication (Thursday-ish)
# Weekly gross trading value per section (yen thousands) and each investor type's share of it.
_SECTION_SCALE = np.array([3.0e10, 1.5e9, 1.2e9])
_TYPE_SHARE = np.array([0.12, 0.22, 0.58, 0.04, 0.04])
_FOREIGN_NET_RATIO = 0.02  # foreign net buying / foreign gross per unit standardised flow


def student_t(rng: np.random.Generator, dof: float, size) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(dof, size=size) * np.sqrt((dof - 2.0) / dof)


@dataclass(frozen=True)
class MarketState:
    """Common factors over the timeline."""

    dates: np.ndarray  # datetime64[D] [T]
    regime: np.ndarray  # int8 [T], 1 = stressed
    market: np.ndarray  # [T] market log return
    sector: np.ndarray  # [T, 33] sector factor returns
    cluster: np.ndarray  # [T, C] latent cluster factor returns (sd cluster_vol)
    week_start: np.ndarray  # [W] timeline index of the week's first session
    week_end: np.ndarray  # [W] timeline index of the week's last session
    flow: np.ndarray  # [W, 3] standardised foreign net buying by section (AR(1), unit variance)
    flow_week: np.ndarray  # [T] week whose flow is in effect at t (-1: none yet)

    def flow_in_effect(self) -> np.ndarray:
        """``[T, 3]`` standardised flow known at the close of each day (0 before the first)."""
        return np.where(self.flow_week[:, None] >= 0, self.flow[self.flow_week], 0.0)


def simulate_regimes(cfg: SyntheticMarketConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Two-state Markov chain (0 calm, 1 stressed), started from its stationary law."""
    u = rng.random(n)
    p_stress = cfg.p_calm_to_stressed / (cfg.p_calm_to_stressed + cfg.p_stressed_to_calm)
    regime = np.empty(n, dtype=np.int8)
    state = int(u[0] < p_stress)
    for t in range(n):  # scalar recursion over days
        if t:
            flip = cfg.p_calm_to_stressed if state == 0 else cfg.p_stressed_to_calm
            state = 1 - state if u[t] < flip else state
        regime[t] = state
    return regime


def simulate_market(
    cfg: SyntheticMarketConfig, rng: np.random.Generator, regime: np.ndarray
) -> np.ndarray:
    """Market log returns: GARCH(1,1) around the regime's long-run variance, Student-t shocks."""
    level = np.where(regime == 1, cfg.stressed_vol, cfg.calm_vol) ** 2
    a, b = cfg.garch_alpha, cfg.garch_beta
    z = student_t(rng, cfg.market_t_dof, len(regime))
    r = np.empty(len(regime))
    var, shock = level[0], 0.0
    for t in range(len(regime)):
        var = (1 - a - b) * level[t] + a * shock**2 + b * var
        shock = np.sqrt(var) * z[t]
        r[t] = cfg.market_drift + shock
    return r


def trading_weeks(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last timeline index of each ISO week of ``dates`` (ascending sessions)."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    monday = days - (days - 4) % 7  # 1970-01-05 (day 4) was a Monday
    starts = np.flatnonzero(np.r_[True, monday[1:] != monday[:-1]])
    ends = np.r_[starts[1:] - 1, len(dates) - 1]
    return starts, ends


def simulate_state(
    cfg: SyntheticMarketConfig, rng: np.random.Generator, dates: np.ndarray
) -> MarketState:
    """Draw every common factor over the timeline ``dates``."""
    n = len(dates)
    regime = simulate_regimes(cfg, rng, n)
    market = simulate_market(cfg, rng, regime)
    stress = 1.0 + 0.5 * regime[:, None]
    sector = cfg.sector_vol * stress * student_t(rng, 6.0, (n, 33))
    cluster = cfg.cluster_vol * rng.standard_normal((n, cfg.n_clusters))

    week_start, week_end = trading_weeks(dates)
    n_weeks = len(week_start)
    rho = cfg.flow_autocorr
    eta = rng.standard_normal((n_weeks, 3))
    flow = np.empty((n_weeks, 3))
    flow[0] = eta[0]
    for w in range(1, n_weeks):  # AR(1) with unit stationary variance
        flow[w] = rho * flow[w - 1] + np.sqrt(1 - rho**2) * eta[w]
    effective = week_end + PUBLICATION_LAG + 1  # the session after publication
    flow_week = np.searchsorted(effective, np.arange(n), side="right") - 1
    return MarketState(
        dates=dates,
        regime=regime,
        market=market,
        sector=sector,
        cluster=cluster,
        week_start=week_start,
        week_end=week_end,
        flow=flow,
        flow_week=flow_week,
    )


def trades_spec_frame(
    state: MarketState, rng: np.random.Generator, first: int, last: int
) -> pl.DataFrame:
    """Weekly investor-type trading by section (yen thousands), published ``PUBLICATION_LAG``
    sessions after the week; weeks that start and are published inside ``[first, last)``."""
    published = state.week_end + PUBLICATION_LAG
    weeks = np.flatnonzero((state.week_start >= first) & (published < last))
    n_w = len(weeks)
    csum = np.r_[0, np.cumsum(state.regime)]
    start, end = state.week_start[weeks], state.week_end[weeks] + 1
    stressed = (csum[end] - csum[start]) / (end - start)  # share of stressed sessions
    # gross value per (week, section, type): busier in stress, log-normal noise
    gross = (
        _SECTION_SCALE[None, :, None]
        * _TYPE_SHARE[None, None, :]
        * (1 + 0.5 * stressed)[:, None, None]
        * np.exp(0.15 * rng.standard_normal((n_w, 3, len(INVESTOR_TYPES))))
    )
    net_ratio = 0.005 * rng.standard_normal(gross.shape)
    net_ratio[:, :, 2] = _FOREIGN_NET_RATIO * state.flow[weeks]  # foreigners carry the signal
    net = net_ratio * gross
    # individuals take the other side of most foreign net buying
    net[:, :, 1] -= 0.7 * net[:, :, 2]
    purchases = np.round((gross + net) / 2)
    sales = np.round((gross - net) / 2)

    sections = np.array(list(MARKET_SECTIONS.values()))
    cols: dict[str, np.ndarray] = {
        "PublishedDate": np.repeat(state.dates[published[weeks]], 3),
        "StartDate": np.repeat(state.dates[state.week_start[weeks]], 3),
        "EndDate": np.repeat(state.dates[state.week_end[weeks]], 3),
        "Section": np.tile(sections, n_w),
    }
    names = (*INVESTOR_TYPES, "Total")
    sales = np.concatenate([sales, sales.sum(-1, keepdims=True)], axis=-1)
    purchases = np.concatenate([purchases, purchases.sum(-1, keepdims=True)], axis=-1)
    for k, name in enumerate(names):
        s, p = sales[:, :, k].ravel(), purchases[:, :, k].ravel()
        cols[f"{name}Sales"] = s
        cols[f"{name}Purchases"] = p
        cols[f"{name}Total"] = s + p
        cols[f"{name}Balance"] = p - s
    return pl.DataFrame(cols).with_columns(
        pl.col("PublishedDate", "StartDate", "EndDate").cast(pl.Date)
    )
