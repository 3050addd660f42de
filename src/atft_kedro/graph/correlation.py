"""Rolling, point-in-time return correlation with shrinkage.

For a window ending on trading day t (rows t-L+1 … t of the return matrix, L = lookback), the
correlation of codes i and j is the (optionally exponentially weighted) Pearson correlation over
the days on which *both* have a return (pairwise-complete observations), multiplied by
``1 - shrinkage`` (linear shrinkage toward the zero-correlation target).

A code is *eligible* on t when it has at least ``min_obs`` returns in the window and a non-zero
variance; a pair is used only if the two codes share at least ``min_obs`` returns. Everything
else gets correlation 0, so it can never produce an edge.

Computation. Each code's window is standardised by its own (weighted) mean and standard
deviation, u = (x - μ)/σ, 0 where missing. For two codes without missing days the pairwise
correlation is just Σ w u_i u_j / Σ w: one [N, L] × [L, N] matrix product per date (batched
when several windows are asked for). Codes with a missing day (the set I, usually a small share)
get the exact pairwise moments from six [|I|, L] × [L, N] products, which overwrite their rows
and columns. The statistics are shift- and scale-invariant, so standardising first only improves
float32 accuracy. A pair that is constant over its common days gets 0.

"Constant" is a spread within rounding of the data's scale (``returns_volatility.negligible``),
never a spread of exactly 0: a code whose returns did not move over the window, or over the days
it shares with another code, has a variance that is rounding noise, and correlating that noise
would make edges out of it.
"""

from __future__ import annotations

from typing import Literal

import torch

from atft_kedro.features.returns_volatility import negligible

Method = Literal["pearson", "ewm"]

# Relative rounding of the float32 pairwise sums: a sum over L ≤ ~1,000 days of float32 terms is
# off by up to ~L·2⁻²⁴ of the second moment it is cancelled from.
_FLOAT32_RTOL = 1e-4


def window_weights(lookback: int, method: Method, halflife: float) -> torch.Tensor:
    """Observation weights [L] over a window, oldest day first (float64).

    ``pearson``: all ones. ``ewm``: 0.5 ** (age / halflife), age in trading days (0 on day t).
    """
    if method == "pearson":
        return torch.ones(lookback, dtype=torch.float64)
    if method == "ewm":
        if halflife <= 0:
            raise ValueError(f"graph: halflife must be > 0 trading days, got {halflife}")
        age = torch.arange(lookback - 1, -1, -1, dtype=torch.float64)
        return 0.5 ** (age / halflife)
    raise ValueError(f"graph: method must be 'pearson' or 'ewm', got {method!r}")


def return_windows(returns: torch.Tensor, ends: torch.Tensor, lookback: int) -> torch.Tensor:
    """Windows [B, L, N] of ``returns`` [T, N] ending at rows ``ends`` [B] (inclusive).

    Rows before the first one are NaN (no data), never wrapped around.
    """
    pad = returns.new_full((lookback - 1, returns.shape[1]), float("nan"))
    padded = torch.cat([pad, returns])  # row r of returns is row r + L - 1 here
    return padded.unfold(0, lookback, 1)[ends].transpose(1, 2)  # [B, L, N]


def _pairwise_rows(
    ui: torch.Tensor,
    mi: torch.Tensor,
    u: torch.Tensor,
    m: torch.Tensor,
    w: torch.Tensor,
    min_obs: int,
) -> torch.Tensor:
    """Exact pairwise-complete weighted correlation of K codes with all N codes.

    ui, mi: [B, L, K] and u, m: [B, L, N] standardised returns (0 where missing) and presence
    (0/1); w: [L] weights. Returns [B, K, N].
    """
    k = ui.shape[2]
    wc = w.view(1, -1, 1)
    # sums over the days both codes have a return: Σ w u_i m_j, Σ w u_i² m_j, Σ w m_i m_j, Σ m_i m_j
    left = torch.cat([wc * ui, wc * ui * ui, wc * mi, mi], dim=2).transpose(1, 2)
    s_i, q_i, n_w, n = (left @ m).split(k, dim=1)
    # Σ w u_i u_j, Σ w m_i u_j, Σ w m_i u_j²
    p, s_j = (left[:, [*range(k), *range(2 * k, 3 * k)]] @ u).split(k, dim=1)
    q_j = left[:, 2 * k : 3 * k] @ (u * u)

    n_w.clamp_(min=1e-12)
    square_i, square_j = q_i.clone(), q_j.clone()  # Σ w u² over the common days (× Σ w)
    q_i.addcdiv_(s_i * s_i, n_w, value=-1.0)  # variance of i over the common days (× Σ w)
    q_j.addcdiv_(s_j * s_j, n_w, value=-1.0)  # variance of j
    p.addcdiv_(s_i * s_j, n_w, value=-1.0)  # covariance
    # A variance is real when it is above 1e-6 of the code's own over the window (u has unit
    # variance there) and above the float32 rounding of the squares it was cancelled from.
    ok = (n >= min_obs) & (q_i > 1e-6 * n_w) & (q_j > 1e-6 * n_w)
    ok &= ~negligible(q_i, square_i, _FLOAT32_RTOL) & ~negligible(q_j, square_j, _FLOAT32_RTOL)
    return p.div_(q_i.mul_(q_j).clamp_(min=1e-30).sqrt_()).masked_fill_(~ok, 0.0)


def _standardised_windows(
    returns: torch.Tensor,
    ends: torch.Tensor,
    lookback: int,
    min_obs: int,
    method: Method,
    halflife: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The windows ending at ``ends`` standardised with their weighted (float64) moments.

    returns: float [T, N]; ends: long [B]. Returns ``u`` float32 [B, L, N] (weighted z-scores of
    eligible codes, 0 where missing or ineligible), ``m`` float32 [B, L, N] (present and
    eligible), ``w32`` float32 [L] (window weights), ``n_obs`` long [B, N] (days present) and
    ``eligible`` bool [B, N] (at least ``min_obs`` days and a non-negligible spread).
    """
    x = return_windows(returns.to(torch.float64), ends, lookback)  # [B, L, N]
    present = torch.isfinite(x)
    x = torch.where(present, x, torch.zeros_like(x))
    w = window_weights(lookback, method, halflife).view(1, -1, 1)
    wm = w * present

    n_obs = present.sum(dim=1)  # [B, N]
    weight = wm.sum(dim=1).clamp_min(1e-300)
    mean = (wm * x).sum(dim=1) / weight
    dev = torch.where(present, x - mean.unsqueeze(1), torch.zeros_like(x))
    var = (wm * dev * dev).sum(dim=1) / weight  # centred: ~1e-32 for a series that did not move
    scale = x.abs().amax(dim=1) + 1.0  # log returns: their rounding is relative to 1
    eligible = (n_obs >= min_obs) & ~negligible(var.sqrt(), scale)

    sd = torch.where(eligible, var, torch.ones_like(var)).sqrt()
    u = (dev / sd.unsqueeze(1)) * eligible.unsqueeze(1)
    u = u.to(torch.float32)  # [B, L, N]
    m = (present & eligible.unsqueeze(1)).to(torch.float32)
    w32 = w.to(torch.float32).flatten()
    return u, m, w32, n_obs, eligible


def _complete_correlation(
    u: torch.Tensor, w32: torch.Tensor, workspace: torch.Tensor | None
) -> torch.Tensor:
    """``Σ w u_i u_j / Σ w`` for every pair, float32 [B, N, N] (in ``workspace`` when given):
    exact for codes present on every day of the window. u [B, L, N], w32 [L]."""
    root_w = w32.sqrt().view(1, -1, 1)
    uw = u * root_w
    b, n = u.shape[0], u.shape[2]
    corr = None if workspace is None else workspace[: b * n * n].view(b, n, n)
    corr = torch.bmm(uw.transpose(1, 2), uw, out=corr)
    corr /= w32.sum()
    return corr


def _exact_incomplete_rows(
    corr: torch.Tensor,
    u: torch.Tensor,
    m: torch.Tensor,
    w32: torch.Tensor,
    eligible: torch.Tensor,
    n_obs: torch.Tensor,
    min_obs: int,
) -> None:
    """Overwrite, in ``corr`` [B, N, N], the rows and columns of eligible codes with a missing
    day by their exact pairwise values, padded to the same K on every date (padding repeats other
    codes, whose exact rows are right too)."""
    lookback = u.shape[1]
    incomplete = eligible & (n_obs < lookback)
    k = int(incomplete.sum(dim=1).max())
    if k:
        rows = torch.argsort(incomplete.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]
        take = rows.unsqueeze(1).expand(-1, lookback, -1)  # [B, L, K]
        exact = _pairwise_rows(u.gather(2, take), m.gather(2, take), u, m, w32, min_obs)
        batch = torch.arange(corr.shape[0]).unsqueeze(1)
        corr[batch, rows] = exact  # [B, K, N] rows ...
        corr.transpose(1, 2)[batch, rows] = exact  # ... and the same as columns


def rolling_correlation(
    returns: torch.Tensor,
    ends: torch.Tensor,
    *,
    lookback: int,
    min_obs: int,
    method: Method = "pearson",
    halflife: float = 20.0,
    shrinkage: float = 0.0,
    workspace: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrunk correlation matrices of the windows ending at ``ends``.

    returns: float [T, N] daily log returns, NaN where missing; ends: long [B] row indices.
    Returns ``corr`` float32 [B, N, N] (diagonal 1 for eligible codes, rows and columns of
    ineligible codes 0) and ``eligible`` bool [B, N]. ``corr`` is written into ``workspace``
    (a float32 tensor of at least B·N² elements) when given: reusing it across calls avoids
    the page faults of a fresh N × N allocation each time.
    """
    if not 2 <= min_obs <= lookback:
        raise ValueError(f"graph: need 2 <= min_obs <= lookback, got {min_obs=}, {lookback=}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"graph: shrinkage must be in [0, 1], got {shrinkage}")
    u, m, w32, n_obs, eligible = _standardised_windows(
        returns, ends, lookback, min_obs, method, halflife
    )
    corr = _complete_correlation(u, w32, workspace)
    _exact_incomplete_rows(corr, u, m, w32, eligible, n_obs, min_obs)
    corr.clamp_(-1.0, 1.0).mul_(1.0 - shrinkage)
    corr.diagonal(dim1=1, dim2=2).copy_(eligible)
    return corr, eligible
