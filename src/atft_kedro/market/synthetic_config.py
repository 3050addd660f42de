"""Every knob of the synthetic J-Quants market, with units, and the named presets.

Units: returns and volatilities are daily log returns (``0.01`` = 1% a day); rates of events are
per code per year (245 sessions); probabilities are per session unless said otherwise.

Planted alpha (the expected next-day return given information at the close of day ``t``):

    alpha_1d(i, t) = signal_strength * sum_k sqrt(share_k) * c_k(i, t)

where every component ``c_k`` has unit pooled variance by construction and the components are
mutually uncorrelated, so ``share_k`` is the share of alpha variance that component ``k``
explains and ``signal_strength`` is the standard deviation of ``alpha_1d``. Components:

- ``lead_lag``: ``g_c(t) / cluster_vol``, the day-``t`` shock of the stock's latent cluster
  (hidden style / supply-chain groups drawn independently of the sector taxonomy). Members
  co-move through ``g_c``, so the cluster is discoverable from return correlations; a stock
  follows its peers' previous-day common move. Sector averages mix ~all clusters and cannot
  recover it.
- ``regime_momentum``: residual momentum over ``t-momentum_window .. t-1`` (standardised
  idiosyncratic shocks, skipping day ``t``), sign +1 in the calm regime and -1 in the stressed
  regime.
- ``reversal``: minus the stock's standardised idiosyncratic shock of day ``t``.
- ``earnings_drift``: post-earnings drift, ``surprise * 0.5 ** (age / drift_half_life)`` for
  ``age < drift_window`` sessions after a statement becomes effective (same session if disclosed
  before 15:00, else the next), normalised to unit pooled variance.
- ``investor_flow``: the standardised weekly foreign net buying of the stock's market section
  (``trades_spec`` ForeignersBalance), in effect from the session after publication.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from atft_kedro.errors import ParameterError

SESSIONS_PER_YEAR = 245
ALPHA_COMPONENTS = ("lead_lag", "regime_momentum", "reversal", "earnings_drift", "investor_flow")
HORIZONS = (1, 5, 10, 20)

_DEFAULT_SHARES = MappingProxyType(
    {
        "lead_lag": 0.35,
        "regime_momentum": 0.25,
        "reversal": 0.20,
        "earnings_drift": 0.10,
        "investor_flow": 0.10,
    }
)


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """Parameters of the synthetic market. Defaults are the ``small`` preset."""

    # --- universe and calendar ---
    n_codes: int = 300  # distinct codes over the whole period (incl. later listings)
    start: str | dt.date = "2021-01-04"  # first emitted date (moved to the next TSE session)
    n_days: int = 740  # emitted TSE sessions
    burn_in_days: int = 60  # sessions simulated before `start`, not emitted
    market_shares: tuple[float, float, float] = (0.45, 0.40, 0.15)  # Prime, Standard, Growth
    n_clusters: int = 30  # latent lead-lag clusters, independent of sectors
    alnum_code_share: float = 0.03  # share of codes like "130A0" (at least one)
    ipo_share: float = 0.08  # share of codes first listed after `start`
    delisting_share: float = 0.06  # share of codes delisted before the end
    sector_change_share: float = 0.02  # share of codes reclassified once (new listed_info row)
    market_change_share: float = 0.04  # share of codes moving segment once

    # --- market factor: Markov regime x GARCH(1,1) volatility, Student-t shocks ---
    market_drift: float = 0.0002  # daily mean log return (not part of the oracle)
    calm_vol: float = 0.009  # long-run daily vol in the calm regime
    stressed_vol: float = 0.022  # long-run daily vol in the stressed regime
    p_calm_to_stressed: float = 0.01  # per-session transition probability
    p_stressed_to_calm: float = 0.04  # per-session transition probability
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    market_t_dof: float = 5.0

    # --- cross-section: betas, sectors, latent clusters, idiosyncratic noise ---
    beta_mean: float = 1.0
    beta_sd: float = 0.3
    sector_vol: float = 0.010  # daily vol of each 33-sector factor (x1.5 when stressed)
    cluster_vol: float = 0.012  # daily vol of each latent cluster factor (at 0.008 the default
    # graph put 33% of its edges inside clusters and their lead-lag was too faint to learn; now 66%)
    idio_vol: float = 0.015  # median idiosyncratic daily vol (Growth x growth_vol_multiplier)
    idio_vol_dispersion: float = 0.35  # log-normal sigma of idiosyncratic vol across codes
    growth_vol_multiplier: float = 1.5
    stressed_idio_multiplier: float = 1.3
    idio_garch_alpha: float = 0.06
    idio_garch_beta: float = 0.90
    idio_t_dof: float = 4.0

    # --- planted alpha ---
    signal_strength: float = 0.0022  # sd of alpha_1d (daily return units)
    alpha_shares: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_SHARES))
    momentum_window: int = 20  # sessions
    drift_half_life: float = 10.0  # sessions
    drift_window: int = 40  # sessions (keep below the ~60-session gap between statements)
    flow_autocorr: float = 0.5  # weekly AR(1) coefficient of section flows
    earnings_jump_vol: float = 0.03  # announcement-day return per unit surprise

    # --- corporate actions and trading frictions ---
    split_rate: float = 0.03  # splits per code per year
    suspension_rate: float = 0.1  # suspension episodes per code per year
    suspension_mean_days: float = 3.0  # mean episode length (sessions, geometric)
    zero_volume_prob: float = 0.002  # per session; x5 for Growth codes
    turnover_rate: float = 0.004  # median daily volume / shares outstanding
    volume_t_dof: float = 3.0  # tail of log-volume shocks

    # --- execution ---
    chunk_codes: int = 128  # codes simulated together (bounds memory); results do not depend on it

    def __post_init__(self) -> None:
        shares = dict(self.alpha_shares)
        if set(shares) != set(ALPHA_COMPONENTS):
            raise ValueError(
                f"market.alpha_shares: keys must be {list(ALPHA_COMPONENTS)}, got {sorted(shares)}"
            )
        if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
            raise ValueError(f"market.alpha_shares: must be >= 0 and sum to 1, got {shares}")
        if self.n_codes < 3 or self.n_days < 2:
            raise ValueError(f"market: need n_codes >= 3 and n_days >= 2, got {self}")
        if abs(sum(self.market_shares) - 1) > 1e-6:
            raise ValueError(f"market.market_shares: must sum to 1, got {self.market_shares}")
        object.__setattr__(self, "alpha_shares", MappingProxyType(shares))
        object.__setattr__(self, "market_shares", tuple(self.market_shares))


PRESETS: dict[str, dict] = {
    # ~40 codes x 300 sessions: tests; enough for 120-day warm-up and purged splits.
    "tiny": dict(
        n_codes=40,
        start="2023-01-04",
        n_days=300,
        n_clusters=8,
        alnum_code_share=0.05,
        ipo_share=0.1,
        delisting_share=0.08,
        sector_change_share=0.05,
        market_change_share=0.08,
        split_rate=0.15,
        suspension_rate=0.4,
        zero_volume_prob=0.004,
    ),
    # ~300 codes x 3 years: the default `kedro run`.
    "small": dict(),
    # J-Quants scale: ~4,000 codes x ~10 years (~10M rows), streamed in chunks.
    "full": dict(n_codes=4000, start="2015-01-05", n_days=2500, n_clusters=40),
}


def market_config(preset: str = "small", **overrides) -> SyntheticMarketConfig:
    """The preset's config with ``overrides`` (any field of :class:`SyntheticMarketConfig`)."""
    if preset not in PRESETS:
        raise ParameterError(
            f"market.preset: unknown preset {preset!r}; choose from {list(PRESETS)}"
        )
    names = {f.name for f in dataclasses.fields(SyntheticMarketConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"market: unknown synthetic-market parameter(s) {unknown}")
    return SyntheticMarketConfig(**{**PRESETS[preset], **overrides})
