"""Peer features: hand-computed cases, the leave-one-out group version, and no look-ahead."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.graph import GraphConfig, build_graphs
from atft_kedro.graph.momentum import MOMENTUM_COLUMNS
from atft_kedro.graph.peers import (
    PEER_COLUMNS,
    graph_peer_table,
    group_mean,
    group_peer_table,
    neighbour_mean,
    peer_features,
    peer_returns,
    return_precision,
)
from atft_kedro.graph.returns import ReturnPanel

START = dt.date(2024, 1, 1)


def _returns(x: np.ndarray) -> ReturnPanel:
    t, n = x.shape
    dates = [START + dt.timedelta(days=i) for i in range(t)]
    return ReturnPanel(dates, [f"{1000 + j}0" for j in range(n)], x, np.ones(x.shape, bool), {})


def _edges(returns: ReturnPanel, day: int, pairs: list[tuple[int, int, float]]) -> pl.DataFrame:
    rows = []
    for i, j, rho in pairs:  # both directions
        rows += [
            (returns.dates[day], returns.codes[i], returns.codes[j], rho),
            (returns.dates[day], returns.codes[j], returns.codes[i], rho),
        ]
    return pl.DataFrame(rows, schema=["Date", "src_code", "dst_code", "corr"], orient="row")


def test_neighbour_mean_weights_each_neighbour_by_rho_over_its_volatility(rng):
    x = rng.normal(0, 0.01, (80, 3)) * np.array([1.0, 2.0, 0.5])
    returns = _returns(x)
    day = 70
    peers = neighbour_mean(returns, _edges(returns, day, [(0, 1, 0.5), (0, 2, -0.2)]))
    sd = [np.std(x[day - 59 : day + 1, j], ddof=1) for j in range(3)]
    w1, w2 = 0.5 / sd[1], -0.2 / sd[2]
    assert peers.mean[day, 0] == pytest.approx((w1 * x[day, 1] + w2 * x[day, 2]) / (w1 - w2))
    assert peers.mean[day, 1] == pytest.approx(x[day, 0])  # one neighbour: its return
    assert peers.count[day].tolist() == [2.0, 1.0, 1.0]
    assert peers.weight[day, 0] == pytest.approx(0.7)
    other = np.delete(np.arange(80), day)
    assert np.isnan(peers.mean[other]).all() and (peers.count[other] == 0).all()


def test_a_neighbour_without_a_return_that_day_is_left_out(rng):
    x = rng.normal(0, 0.01, (80, 3))
    x[70, 2] = np.nan
    returns = _returns(x)
    peers = neighbour_mean(returns, _edges(returns, 70, [(0, 1, 0.5), (0, 2, 0.4)]))
    assert peers.mean[70, 0] == pytest.approx(x[70, 1])
    assert peers.count[70, 0] == 1.0
    assert peers.mean[70, 1] == pytest.approx(x[70, 0])


def test_edges_outside_the_panel_are_an_error(rng):
    returns = _returns(rng.normal(0, 0.01, (30, 3)))
    edges = _edges(returns, 5, [(0, 1, 0.5)]).with_columns(pl.lit("99990").alias("src_code"))
    with pytest.raises(ValueError, match="not in the panel"):
        neighbour_mean(returns, edges)


def test_group_mean_is_leave_one_out_and_inverse_variance_weighted(rng):
    x = rng.normal(0, 0.01, (70, 5)) * np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    returns = _returns(x)
    group = np.array([0, 0, 0, 1, -1])
    peers = group_mean(returns, group)
    day = 65
    var = np.array([np.var(x[day - 59 : day + 1, j], ddof=1) for j in range(5)])
    w = 1 / var
    assert peers.mean[day, 0] == pytest.approx(
        (w[1] * x[day, 1] + w[2] * x[day, 2]) / (w[1] + w[2])
    )
    assert peers.count[day, :3].tolist() == [2.0, 2.0, 2.0]
    assert np.isnan(peers.mean[day, 3]), "alone in its group"
    assert np.isnan(peers.mean[day, 4]) and peers.count[day, 4] == 0, "no group"
    np.testing.assert_allclose(return_precision(returns)[day], 1 / np.sqrt(var))


def test_peer_features_follow_their_formulas(rng):
    x = rng.normal(0, 0.01, (300, 8))
    returns = _returns(x)
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    peers = group_mean(returns, group)
    cols = peer_features(returns, peers)
    assert list(cols) == list(PEER_COLUMNS)
    day, i = 280, 2
    vol = np.std(x[day - 19 : day + 1, i], ddof=1)
    gap = (x[day, i] - peers.mean[day, i]) / vol
    assert cols["peer_gap_z"][day, i] == pytest.approx(gap)
    assert cols["peer_ret_5d"][day, i] == pytest.approx(peers.mean[day - 4 : day + 1, i].sum())
    spread = np.std(x, axis=1, ddof=1)
    level = np.log(np.convolve(spread, np.ones(5) / 5)[: len(spread)])
    level[:4] = np.log([spread[: k + 1].mean() for k in range(4)])
    level[:2] = np.nan  # D_5 needs 3 of its 5 days
    window = level[max(0, day - 499) : day + 1]
    z = (level[day] - np.nanmean(window)) / np.nanstd(window, ddof=1)
    assert cols["xs_disp_z"][day, i] == pytest.approx(z)
    assert np.isnan(cols["peer_gap_z"][:9]).all(), "fewer than 10 returns: no volatility"


def _cluster_panel(rng: np.random.Generator, days: int = 300) -> tuple[pl.DataFrame, np.ndarray]:
    """Market + 3 sectors + 4 clusters across them + noise; 24 codes."""
    n = 24
    sector, cluster = np.arange(n) % 3, np.arange(n) // 6
    beta = rng.uniform(0.5, 1.5, n)
    x = (
        beta * rng.normal(0, 0.01, (days, 1))
        + rng.normal(0, 0.008, (days, 3))[:, sector]
        + rng.normal(0, 0.01, (days, 4))[:, cluster]
        + rng.normal(0, 0.012, (days, n))
    )
    close = 100 * np.exp(np.cumsum(x, axis=0))
    dates = [START + dt.timedelta(days=i) for i in range(days)]
    panel = pl.DataFrame(
        {
            "Date": pl.Series([d for d in dates for _ in range(n)], dtype=pl.Date),
            "Code": [f"{1300 + j}0" for j in range(n)] * days,
            "close": close.ravel(),
            "market": ["0111"] * close.size,
            "sector33": [f"{50 + s:04d}" for s in sector] * days,
            "sector17": ["01"] * close.size,
        }
    )
    return panel, cluster


CONFIG = GraphConfig(lookback=200, min_obs=60, k=5, candidates=8, threshold=0.1, progress=False)


def _peer_table(panel: pl.DataFrame) -> pl.DataFrame:
    graphs = build_graphs(panel, CONFIG)
    returns = peer_returns(panel, CONFIG.residualize, CONFIG.beta_window)
    return graph_peer_table(returns, graphs.edges)


def test_peer_features_at_t_ignore_prices_after_t(rng):
    """Change every close after t: every peer feature up to t is unchanged, later ones move."""
    panel, _ = _cluster_panel(rng)
    t = panel["Date"].unique().sort()[220]
    moved = panel.with_columns(
        pl.when(pl.col("Date") > t)
        .then(pl.col("close") * pl.lit(rng.uniform(0.5, 2.0, panel.height)))
        .otherwise(pl.col("close"))
        .alias("close")
    )
    base, perturbed = _peer_table(panel), _peer_table(moved)
    assert base.columns == ["Date", "Code", *PEER_COLUMNS, *MOMENTUM_COLUMNS]
    before = pl.col("Date") <= t
    assert base.filter(before).equals(perturbed.filter(before))
    assert base.filter(before).select(pl.col("peer_ret_1d").is_not_nan().sum()).item() > 1000
    assert not base.filter(~before).equals(perturbed.filter(~before))


def test_graph_peers_track_the_true_cluster_peers(rng):
    """On a panel with planted cross-sector clusters, the graph's neighbour mean of a day's
    residual returns is close to the mean over the true cluster (the observable ceiling's input)."""
    panel, cluster = _cluster_panel(rng, days=400)
    graph = _peer_table(panel)
    groups = pl.DataFrame({"Code": [f"{1300 + j}0" for j in range(24)], "cluster": cluster})
    returns = peer_returns(panel, CONFIG.residualize, CONFIG.beta_window)
    true = group_peer_table(returns, groups)
    both = graph.join(true, on=["Date", "Code"], suffix="_true").filter(
        pl.col("Date") >= pl.col("Date").min() + dt.timedelta(days=200)
    )
    corr = both.select(pl.corr(pl.col("peer_ret_1d").fill_nan(None), "peer_ret_1d_true")).item()
    assert corr > 0.8, corr
