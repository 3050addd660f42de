"""The planted alpha of the synthetic market and its multi-horizon expectation (the oracle).

All arrays are ``[T, N]`` (timeline days x codes) unless said otherwise. Components are defined
in :mod:`atft_kedro.market.synthetic_config`; each has unit pooled variance and they are
mutually uncorrelated, so their weights ``signal_strength * sqrt(share_k)`` set the variance shares.

Multi-day oracle. ``alpha_hd(t) = sum_{k=0}^{h-1} E_t[alpha_1d(t+k)]``, the expected log return
from close ``t`` to close ``t+h`` given what is known at ``t``:

- ``lead_lag`` and ``reversal`` depend on the shocks of day ``t+k`` itself: only ``k = 0`` counts.
- ``regime_momentum`` at ``t+k`` = sign(regime ``t+k``) x trailing sum of shocks; the shocks up
  to ``t`` are known, later ones have mean 0, and ``E_t[sign]`` follows the two-state Markov chain:
  ``s_bar + (s_t - s_bar) * (1 - p - q) ** k``.
- ``earnings_drift`` decays deterministically from known surprises; future surprises have mean 0.
- ``investor_flow``: the flow in effect persists until the next publication; a flow ``j`` weeks
  ahead has expectation ``rho ** j`` times the current one (weekly AR(1)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from atft_kedro.market.synthetic_config import (
    ALPHA_COMPONENTS,
    SESSIONS_PER_YEAR,
    SyntheticMarketConfig,
)

SESSIONS_PER_QUARTER = SESSIONS_PER_YEAR / 4


@dataclass(frozen=True)
class AlphaInputs:
    """Latent drivers of the alpha, aligned on the timeline."""

    cluster_shock: np.ndarray  # [T, N] g_c(t) / cluster_vol of each stock's cluster
    idio_shock: np.ndarray  # [T, N] standardised idiosyncratic shock z(t)
    regime: np.ndarray  # [T] 1 = stressed
    surprise: np.ndarray  # [T, N] earnings surprise on its effective day, 0 elsewhere
    flow: np.ndarray  # [T, N] standardised section flow in effect at t
    flow_week: np.ndarray  # [T] index of the week whose flow is in effect (-1 none)


def drift_kernel(cfg: SyntheticMarketConfig, length: int | None = None) -> np.ndarray:
    """Post-earnings drift by age in sessions (0 from ``drift_window`` on), scaled so that one
    surprise per quarter gives unit pooled variance. ``length`` defaults to ``drift_window``."""
    age = np.arange(length or cfg.drift_window)
    kernel = np.where(age < cfg.drift_window, 0.5 ** (age / cfg.drift_half_life), 0.0)
    return kernel / np.sqrt((kernel**2).sum() / SESSIONS_PER_QUARTER)


def causal_filter(events: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``out[t] = sum_a kernel[a] * events[t - a]`` along axis 0."""
    out = np.zeros_like(events)
    for a, k in enumerate(kernel):  # window-length loop; each step is vectorised
        out[a:] += k * events[: len(events) - a]
    return out


def _prefix_sum(x: np.ndarray) -> np.ndarray:
    """``C[t] = sum_{u < t} x[u]``, shape ``[T + 1, N]``."""
    return np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])


def _window_sum(prefix: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``sum_{lo <= u < hi} x[u]`` per day from a prefix sum (indices clipped to the timeline)."""
    n = len(prefix) - 1
    return prefix[np.clip(hi, 0, n)] - prefix[np.clip(lo, 0, n)]


def regime_sign(regime: np.ndarray) -> np.ndarray:
    """+1 in the calm regime, -1 in the stressed one."""
    return 1.0 - 2.0 * regime


def alpha_components(inp: AlphaInputs, cfg: SyntheticMarketConfig) -> dict[str, np.ndarray]:
    """Standardised components ``{name: [T, N]}`` (unit pooled variance, uncorrelated)."""
    t = np.arange(len(inp.regime))
    w = cfg.momentum_window
    prefix = _prefix_sum(inp.idio_shock)
    momentum = _window_sum(prefix, t - w, t) / np.sqrt(w)  # shocks t-w .. t-1
    return {
        "lead_lag": inp.cluster_shock,
        "regime_momentum": regime_sign(inp.regime)[:, None] * momentum,
        "reversal": -inp.idio_shock,
        "earnings_drift": causal_filter(inp.surprise, drift_kernel(cfg)),
        "investor_flow": inp.flow,
    }


def component_weights(cfg: SyntheticMarketConfig) -> dict[str, float]:
    """Weight of each standardised component in ``alpha_1d`` (daily return units)."""
    return {k: cfg.signal_strength * np.sqrt(cfg.alpha_shares[k]) for k in ALPHA_COMPONENTS}


def planted_alpha(components: dict[str, np.ndarray], cfg: SyntheticMarketConfig) -> np.ndarray:
    """``alpha_1d [T, N]``: the expected log return from close t to close t+1."""
    weights = component_weights(cfg)
    return cast(np.ndarray, sum(weights[k] * components[k] for k in ALPHA_COMPONENTS))


def forward_components(
    inp: AlphaInputs, cfg: SyntheticMarketConfig, horizons: tuple[int, ...]
) -> dict[int, dict[str, np.ndarray]]:
    """``{h: {component: [T, N]}}``: each component's weighted part of ``alpha_hd``, the expected
    log return from close t to close t+h given what is known at t (module docstring)."""
    weights = component_weights(cfg)
    n_t = len(inp.regime)
    t = np.arange(n_t)
    w = cfg.momentum_window
    prefix = _prefix_sum(inp.idio_shock)
    p, q = cfg.p_calm_to_stressed, cfg.p_stressed_to_calm
    s_bar = 1.0 - 2.0 * p / (p + q)
    decay = 1.0 - p - q
    sign_now = regime_sign(inp.regime)

    drift = drift_kernel(cfg, cfg.drift_window + max(horizons))

    out = {}
    for h in horizons:
        # momentum: k = 0 uses the known regime; k >= 1 the Markov forecast of the sign
        mom = sign_now[:, None] * _window_sum(prefix, t - w, t)
        for k in range(1, h):
            expected_sign = s_bar + (sign_now - s_bar) * decay**k
            known = _window_sum(prefix, t + k - w, t + 1)  # shocks t+k-w .. t
            mom += expected_sign[:, None] * known
        mom /= np.sqrt(w)
        # earnings drift: kernel summed over the next h ages
        kernel_h = np.array([drift[a : a + h].sum() for a in range(cfg.drift_window)])
        earnings = causal_filter(inp.surprise, kernel_h)
        # investor flow: rho ** (weeks ahead), summed over the next h sessions
        ahead = inp.flow_week[np.clip(t[:, None] + np.arange(h), 0, n_t - 1)]
        flow_factor = (cfg.flow_autocorr ** (ahead - inp.flow_week[:, None])).sum(axis=1)
        out[h] = {
            "lead_lag": weights["lead_lag"] * inp.cluster_shock,
            "regime_momentum": weights["regime_momentum"] * mom,
            "reversal": weights["reversal"] * -inp.idio_shock,
            "earnings_drift": weights["earnings_drift"] * earnings,
            "investor_flow": weights["investor_flow"] * flow_factor[:, None] * inp.flow,
        }
    return out


def forward_alpha(
    inp: AlphaInputs, cfg: SyntheticMarketConfig, horizons: tuple[int, ...]
) -> dict[int, np.ndarray]:
    """``{h: alpha_hd [T, N]}``, the expected log return from close t to close t+h."""
    parts = forward_components(inp, cfg, horizons)
    return {h: cast(np.ndarray, sum(parts[h][k] for k in ALPHA_COMPONENTS)) for h in horizons}
