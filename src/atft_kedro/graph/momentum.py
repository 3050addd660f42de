"""Residual momentum and the market state that decides its sign.

All arrays are ``[T, N]`` on the panel's trading calendar × codes, from the residual log returns
``r`` of :mod:`atft_kedro.graph.peers` (net of β × market and the sector33 mean) and the day's
peer mean ``p`` (the graph neighbours' correlation-weighted ``r``). For day t, everything known at
its close:

    e(u)                = r(u) − p(u)                          the move beyond market, sector, peers
    z(u)                = clip(e(u) / σ_20(e)(u−1), ±4)         scaled by the residual's own vol
                                                                over u−20 … u−1 (known before u)
    resid_mom_20d(t)    = Σ_{u=t−19..t} z(u) / √20             residual momentum, today included
    mom_payoff(t)       = RankCorr_i(resid_mom_20d(t−2), z(t))  what momentum earned today
    mom_payoff_5d(t)    = EWMA over days (half-life 5) of mom_payoff up to t
    resid_mom_x_payoff  = resid_mom_20d × mom_payoff_5d

Why these. Momentum in the stock's own, idiosyncratic returns persists for weeks (Blitz, Huij &
Martens 2011, "Residual momentum"), so it survives the day between a signal and next-session
entry, unlike the one-day effects (following yesterday's peers, reverting yesterday's move). Its
sign is not fixed: momentum crashes in stressed markets (Daniel & Moskowitz 2016). Rather than
guess the state from volatility, which adjusts slowly, ``mom_payoff_5d`` reads it from what
momentum itself paid over the last days (factor momentum), and ``resid_mom_x_payoff`` turns the
residual momentum the way the market currently rewards it. The payoff scores the momentum of
t−2 against day t's move, so the one-day reversal of day t−1's shock does not enter it.
The whole market shares ``mom_payoff_5d`` on a date (a market-wide feature). A value needs half
of its window.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import rankdata

from atft_kedro.graph.returns import trailing_std

MOMENTUM_COLUMNS = ("resid_mom_20d", "mom_payoff_5d", "resid_mom_x_payoff")
WINDOW = 20  # trading days summed by resid_mom_20d
VOL_WINDOW = 20  # trading days of the residual std that scales each day's move
CLIP = 4.0  # bound on a day's scaled move (earnings jumps would dominate a 20-day sum)
PAYOFF_LAG = 2  # the payoff scores momentum as of t−2 against day t
PAYOFF_HALF_LIFE = 5.0  # trading days


def scaled_residuals(r: np.ndarray, peer_mean: np.ndarray) -> np.ndarray:
    """``z [T, N]``: each day's residual beyond the peers over its trailing std before that day
    (days without a peer mean use ``r`` alone), clipped to ±``CLIP``; NaN without a std."""
    move = r - np.where(np.isfinite(peer_mean), peer_mean, 0.0)
    vol = np.full(move.shape, np.nan)
    vol[1:] = trailing_std(move, VOL_WINDOW, VOL_WINDOW // 2)[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(move / np.where(vol > 0, vol, np.nan), -CLIP, CLIP)


def trailing_sum(x: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Σ over rows t−window+1 … t of ``x [T, N]``, NaNs skipped; NaN with fewer than
    ``min_count`` finite values."""
    finite = np.isfinite(x)
    pad = np.zeros((1, x.shape[1]))
    total = np.concatenate([pad, np.cumsum(np.where(finite, x, 0.0), axis=0)])
    seen = np.concatenate([pad, np.cumsum(finite, axis=0)])
    lo = np.clip(np.arange(x.shape[0]) + 1 - window, 0, None)
    hi = np.arange(1, x.shape[0] + 1)
    return np.where(seen[hi] - seen[lo] >= min_count, total[hi] - total[lo], np.nan)


def daily_rank_correlation(a: np.ndarray, b: np.ndarray, min_count: int = 10) -> np.ndarray:
    """``[T]``: Spearman correlation across columns of ``a`` and ``b`` on each row, over the
    columns where both are finite (average ranks for ties); NaN with fewer than ``min_count``
    pairs or no spread."""
    both = np.isfinite(a) & np.isfinite(b)
    ra = rankdata(np.where(both, a, np.nan), axis=1, nan_policy="omit")
    rb = rankdata(np.where(both, b, np.nan), axis=1, nan_policy="omit")
    n = both.sum(axis=1, keepdims=True)
    mean = (n + 1) / 2.0  # the mean of the ranks 1 … n (ties keep it)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(both, ra - mean, 0.0)
        db = np.where(both, rb - mean, 0.0)
        saa, sbb = (da * da).sum(axis=1), (db * db).sum(axis=1)
        # ranks of n >= 2 distinct values have a spread of at least 1/2: compare with that
        corr = (da * db).sum(axis=1) / np.sqrt(saa * sbb)
    return np.where((n[:, 0] >= min_count) & (saa > 0.25) & (sbb > 0.25), corr, np.nan)


def momentum_payoff(z: np.ndarray, momentum: np.ndarray) -> np.ndarray:
    """``[T]``: the EWMA (half-life ``PAYOFF_HALF_LIFE`` days, undefined days skipped, the last
    value carried) of the daily rank correlation of momentum as of t−``PAYOFF_LAG`` with z(t)."""
    lagged = np.full(momentum.shape, np.nan)
    lagged[PAYOFF_LAG:] = momentum[:-PAYOFF_LAG]
    daily = pl.Series(daily_rank_correlation(lagged, z)).fill_nan(None)
    smooth = daily.ewm_mean(half_life=PAYOFF_HALF_LIFE, ignore_nulls=True, min_samples=3)
    return smooth.forward_fill().fill_null(np.nan).to_numpy()


def momentum_features(r: np.ndarray, peer_mean: np.ndarray) -> dict[str, np.ndarray]:
    """The momentum columns (``MOMENTUM_COLUMNS``) as ``{name: float [T, N]}`` from the residual
    returns ``r`` and the peer mean ``peer_mean`` (both ``[T, N]``)."""
    z = scaled_residuals(r, peer_mean)
    momentum = trailing_sum(z, WINDOW, WINDOW // 2) / np.sqrt(WINDOW)
    payoff = np.broadcast_to(momentum_payoff(z, momentum)[:, None], r.shape)
    payoff = np.where(np.isfinite(r) | np.isfinite(momentum), payoff, np.nan)
    return {
        "resid_mom_20d": momentum,
        "mom_payoff_5d": payoff,
        "resid_mom_x_payoff": momentum * payoff,
    }
