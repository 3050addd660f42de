"""Peer inputs: what a stock's graph neighbours did today, and what the stock did beyond them.

All arrays are ``[T, N]`` on the panel's trading calendar × codes. ``r`` is the daily log return
net of the day's sector33 mean (:func:`atft_kedro.graph.returns.residual_returns`), so the peer
signal is the co-movement the sectors do not explain. For day t (everything known at its close):

    peer_ret_1d(t)   = Σ_j w_ij r_j(t) / Σ_j |w_ij|      over neighbours j with a return on t
    peer_ret_5d(t)   = Σ_{u=t-4..t} peer_ret_1d(u)
    peer_gap_z(t)    = (r_i(t) − peer_ret_1d(t)) / σ_20(r_i)(t)
    xs_disp_z(t)     = z-score of ln D_5(t) against its own last 500 days, D_5 the 5-day mean of
                       the day's cross-sectional std of r (a stress gauge: in stressed markets
                       idiosyncratic and sector moves widen together)
    peer_count(t), peer_weight(t) = number of neighbours with a return on t, and Σ_j |w_ij|

The same residuals beyond the peers, summed over weeks, are the residual momentum family
(:mod:`atft_kedro.graph.momentum`); the peer table carries both.

``w_ij`` is the edge correlation ρ_ij of day t's graph (:func:`neighbour_mean`), or 1 for every
other member of the stock's group (:func:`group_mean`, used with the synthetic market's latent
clusters for the observable ceiling). σ_20 is the sample std over t−19 … t; the market is the
equal-weight mean of the day's log returns. A value needs at least half of its window.

Why these: a stock's neighbours' common move of today leads its own next-day return when the
co-movement comes from a shared slow-to-diffuse factor (lead-lag), and the part of its own move
that its peers did not share tends to revert (and, summed over weeks, to trend, with a sign that
flips in stressed markets). In the raw return these parts cancel; split by the graph, they do not.
The one-day parts are gone by the next session; the weeks-long trend is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.graph.momentum import momentum_features
from atft_kedro.graph.returns import (
    Residualize,
    ReturnPanel,
    daily_log_returns,
    residual_returns,
    trailing_std,
)

PEER_COLUMNS = (
    "peer_ret_1d",
    "peer_ret_5d",
    "peer_gap_z",
    "xs_disp_z",
    "peer_count",
    "peer_weight",
)
VOL_WINDOW = 20  # trading days of the own standard deviation in peer_gap_z
DISPERSION_WINDOW = 5  # trading days averaged by the dispersion gauge D_5
REGIME_WINDOW = 500  # trading days against which xs_disp_z scores today's dispersion
PRECISION_WINDOW = 60  # trading days of the std that weights each neighbour (return_precision)


@dataclass(frozen=True)
class PeerMean:
    """A weighted mean of other stocks' returns per day and stock, with its support.

    mean    float [T, N]  Σ_j w_ij r_j / Σ_j |w_ij| (NaN: no neighbour with a return)
    count   float [T, N]  neighbours with a return that day
    weight  float [T, N]  Σ_j |w_ij| over them
    """

    mean: np.ndarray
    count: np.ndarray
    weight: np.ndarray


def _weighted_mean(
    r: np.ndarray,
    precision: np.ndarray,
    day: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    w: np.ndarray,
) -> PeerMean:
    """PeerMean from directed pairs (day, src → dst, weight w) over the finite returns of src,
    each weighted by w × precision[day, src]; ``weight`` reports Σ |w| (without the precision)."""
    n_t, n = r.shape
    value = r[day, src]
    scale = precision[day, src]
    use = np.isfinite(value) & np.isfinite(scale)
    key = day[use] * n + dst[use]
    size = n_t * n
    wp = w[use] * scale[use]
    total = np.bincount(key, weights=wp * value[use], minlength=size)
    norm = np.bincount(key, weights=np.abs(wp), minlength=size)
    weight = np.bincount(key, weights=np.abs(w[use]), minlength=size)
    count = np.bincount(key, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(norm > 0, total / norm, np.nan)
    shape = (n_t, n)
    return PeerMean(mean.reshape(shape), count.reshape(shape), weight.reshape(shape))


def return_precision(returns: ReturnPanel) -> np.ndarray:
    """[T, N]: 1 / σ_60 of each code's returns over t−59 … t (NaN with fewer than 20 returns).

    A neighbour's return is a noisier reading of the shared move the larger its own noise, so each
    enters the mean with weight ρ_ij / σ_j, proportional to the regression coefficient of r_i on
    r_j: for two members of one group (shared variance s²), ρ_ij / σ_j = s² / (σ_i σ_j²), the
    inverse-variance weight up to a factor common to i's neighbours.
    """
    vol = trailing_std(returns.log_returns, PRECISION_WINDOW, 20)
    with np.errstate(divide="ignore"):
        return np.where(vol > 0, 1.0 / vol, np.nan)


def neighbour_mean(returns: ReturnPanel, edges: pl.DataFrame) -> PeerMean:
    """Correlation-weighted mean of each stock's neighbours' returns in each day's graph.

    ``edges``: graph_edges (Date, src_code, dst_code, corr; both directions). A day without a graph
    gives NaN. Edges naming a date or code outside ``returns`` are an error.
    """
    day_of = {d: i for i, d in enumerate(returns.dates)}
    code_of = {c: i for i, c in enumerate(returns.codes)}
    try:
        indexed = edges.select(
            pl.col("Date").replace_strict(day_of, return_dtype=pl.Int64).alias("day"),
            pl.col("src_code").replace_strict(code_of, return_dtype=pl.Int64).alias("src"),
            pl.col("dst_code").replace_strict(code_of, return_dtype=pl.Int64).alias("dst"),
            pl.col("corr").cast(pl.Float64),
        )
    except pl.exceptions.InvalidOperationError as error:
        raise ValueError(
            "graph_edges: an edge names a date or code that is not in the panel"
        ) from error
    return _weighted_mean(
        returns.log_returns,
        return_precision(returns),
        indexed["day"].to_numpy(),
        indexed["src"].to_numpy(),
        indexed["dst"].to_numpy(),
        indexed["corr"].to_numpy(),
    )


def group_mean(returns: ReturnPanel, group: np.ndarray) -> PeerMean:
    """Mean of the other members of each stock's group (leave-one-out), per day, each member
    weighted by its precision² (1/σ_j², the weight :func:`neighbour_mean` gives a group member).

    ``group`` int [N], −1 for a code without a group (its mean is NaN). ``weight`` = ``count``.
    """
    r = returns.log_returns
    n_t, n = r.shape
    n_groups = max(int(group.max(initial=-1)) + 1, 1)
    w = return_precision(returns) ** 2
    member = (group >= 0)[None, :] & np.isfinite(r) & np.isfinite(w)
    g = np.maximum(group, 0)
    key = (np.arange(n_t)[:, None] * n_groups + g[None, :])[member]
    size = n_t * n_groups

    def per_group(values: np.ndarray) -> np.ndarray:  # Σ over each (day, group), [T, groups]
        return np.bincount(key, weights=values[member], minlength=size).reshape(n_t, n_groups)

    own_w = np.where(member, w, 0.0)
    own_wr = np.where(member, w * np.where(member, r, 0.0), 0.0)
    total = per_group(w * np.where(member, r, 0.0))[:, g] - own_wr
    norm = per_group(w)[:, g] - own_w
    others = per_group(np.ones_like(r))[:, g] - member
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((others > 0) & (norm > 0), total / norm, np.nan)
    mean[:, group < 0] = np.nan
    others[:, group < 0] = 0.0
    return PeerMean(mean, others, others.copy())


def _trailing_sum(
    x: np.ndarray, window: int, lag: int = 0, min_count: int | None = None
) -> np.ndarray:
    """Σ over rows t−lag−window+1 … t−lag of ``x [T, N]``, NaNs skipped; NaN where fewer than
    ``min_count`` (default: half the window) values are finite."""
    need = (window + 1) // 2 if min_count is None else min_count
    finite = np.isfinite(x)
    pad = np.zeros((1, x.shape[1]))
    total = np.concatenate([pad, np.cumsum(np.where(finite, x, 0.0), axis=0)])
    seen = np.concatenate([pad, np.cumsum(finite, axis=0)])
    t = np.arange(x.shape[0])
    hi = np.clip(t - lag + 1, 0, None)
    lo = np.clip(t - lag - window + 1, 0, None)
    with np.errstate(invalid="ignore"):
        return np.where(seen[hi] - seen[lo] >= need, total[hi] - total[lo], np.nan)


def dispersion_z(log_returns: np.ndarray) -> np.ndarray:
    """[T]: ln of the 5-day mean cross-sectional std of ``log_returns [T, N]``, z-scored against
    its own last 500 days (at least 20). NaN where undefined."""
    finite = np.isfinite(log_returns)
    x = np.where(finite, log_returns, 0.0)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = ((x * x).sum(axis=1) - x.sum(axis=1) ** 2 / n) / (n - 1)
        spread = np.where(n >= 3, np.sqrt(np.maximum(var, 0.0)), np.nan)
    average = _trailing_sum(spread[:, None], DISPERSION_WINDOW) / _trailing_sum(
        np.isfinite(spread[:, None]) * 1.0, DISPERSION_WINDOW, min_count=0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.log(average)
    seen = np.isfinite(level).astype(np.float64)
    mean = _trailing_sum(level, REGIME_WINDOW, min_count=VOL_WINDOW) / _trailing_sum(
        seen, REGIME_WINDOW, min_count=0
    )
    spread_of_level = trailing_std(level, REGIME_WINDOW, VOL_WINDOW)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((level - mean) / spread_of_level)[:, 0]


def graph_stage_features(returns: ReturnPanel, peers: PeerMean) -> dict[str, np.ndarray]:
    """Every graph-stage column: the peer family, then the residual momentum family."""
    return peer_features(returns, peers) | momentum_features(returns.log_returns, peers.mean)


def peer_features(returns: ReturnPanel, peers: PeerMean) -> dict[str, np.ndarray]:
    """The peer columns (``PEER_COLUMNS``) as ``{name: float [T, N]}``.

    ``returns``: residual log returns (the same series the peer mean was taken over).
    """
    r = returns.log_returns
    own_vol = trailing_std(r, VOL_WINDOW, VOL_WINDOW // 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (r - peers.mean) / np.where(own_vol > 0, own_vol, np.nan)
    regime = np.broadcast_to(dispersion_z(r)[:, None], r.shape)
    return {
        "peer_ret_1d": peers.mean,
        "peer_ret_5d": _trailing_sum(peers.mean, 5),
        "peer_gap_z": gap,
        "xs_disp_z": regime,
        "peer_count": peers.count,
        "peer_weight": peers.weight,
    }


def peer_table(returns: ReturnPanel, columns: dict[str, np.ndarray]) -> pl.DataFrame:
    """Date, Code and the columns (Float32, NaN where undefined) for every (date, code) with a
    panel row, sorted by Date, Code."""
    t, n = np.nonzero(returns.present)
    dates = np.asarray(returns.dates, dtype="datetime64[D]")
    codes = np.asarray(returns.codes, dtype=object)
    return pl.DataFrame(
        {
            "Date": pl.Series(dates[t], dtype=pl.Date),
            "Code": pl.Series(codes[n], dtype=pl.Utf8),
            **{
                name: pl.Series(name, values[t, n], dtype=pl.Float32)
                for name, values in columns.items()
            },
        }
    )


def graph_peer_table(returns: ReturnPanel, edges: pl.DataFrame) -> pl.DataFrame:
    """The peer table (Date, Code, ``PEER_COLUMNS``, ``MOMENTUM_COLUMNS``) from each day's graph
    edges.

    ``returns``: the residual returns the graph was built from (before winsorising).
    """
    return peer_table(returns, graph_stage_features(returns, neighbour_mean(returns, edges)))


def group_peer_table(returns: ReturnPanel, groups: pl.DataFrame) -> pl.DataFrame:
    """The peer table with each code's group (``groups``: Code, cluster) in place of its graph
    neighbours; codes missing from ``groups`` get NaN peer columns."""
    member = dict(zip(groups["Code"].to_list(), groups["cluster"].to_list(), strict=True))
    group = np.array([member.get(code, -1) for code in returns.codes], dtype=np.int64)
    return peer_table(returns, graph_stage_features(returns, group_mean(returns, group)))


def peer_returns(
    panel: pl.DataFrame, residualize: Residualize, beta_window: int | None
) -> ReturnPanel:
    """The residual log returns the graph correlates and the peer inputs average (not winsorised:
    a peer's jump today is news its neighbours may follow)."""
    return residual_returns(daily_log_returns(panel), residualize, beta_window)
