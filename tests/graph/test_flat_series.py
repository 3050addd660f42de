"""Series that do not move: exactly no spread, not running-sum residue, and nothing after t."""

import numpy as np
import polars as pl
import pytest
import torch

from atft_kedro.graph.build import GraphConfig, build_graphs
from atft_kedro.graph.correlation import rolling_correlation
from atft_kedro.graph.peers import graph_peer_table, peer_returns
from atft_kedro.graph.returns import market_betas, trailing_flat, trailing_std


def test_trailing_std_of_a_flat_stretch_is_exactly_zero(rng):
    for level in (0.0, 0.004, -0.03):  # running sums leave residue after the volatile days
        x = np.r_[rng.normal(0, 0.02, 300), np.full(60, level)][:, None]
        std = trailing_std(x, 20)
        assert np.all(std[319:] == 0.0) and np.all(std[300:319] > 0.0)
    x = np.r_[rng.normal(0, 0.02, 30), np.full(30, 0.01)][:, None]
    x[40:45] = np.nan  # a gap inside the flat stretch: its finite values still do not move
    assert np.all(trailing_std(x, 10)[49:] == 0.0) and np.all(trailing_flat(x, 10)[49:])


def test_a_market_that_does_not_move_gives_no_beta(rng):
    returns = rng.normal(0, 0.01, (200, 6))
    returns[100:170] = 0.002  # every code, so the equal-weight market too
    beta, _ = market_betas(returns, 30)
    assert np.all(beta[131:171] == 1.0)  # the default of "too little to estimate"
    assert np.all(beta[60:100] != 1.0)


def equal_up_to_rounding(days: int, level: float = 0.01) -> np.ndarray:
    """``level`` every day, one ulp above it every other day: one value up to rounding."""
    x = np.full(days, level)
    x[::2] = np.nextafter(level, 1.0)
    return x


def test_values_equal_up_to_rounding_have_no_spread(rng):
    """Not only a series of exactly one value: one that moves by an ulp is flat, its trailing
    std exactly 0, and it has no correlation (a spread of exactly 0 is not the test)."""
    x = np.r_[rng.normal(0, 0.02, 100), equal_up_to_rounding(60)][:, None]
    flat = trailing_flat(x, 20)
    assert np.all(flat[119:]) and not flat[100:119].any()
    assert np.all(trailing_std(x, 20)[119:] == 0.0)
    returns = rng.normal(0, 0.01, (120, 4))
    returns[:, 0] = equal_up_to_rounding(120)
    corr, eligible = rolling_correlation(
        torch.as_tensor(returns), torch.tensor([119]), lookback=120, min_obs=20
    )
    assert eligible[0].tolist() == [False, True, True, True]
    assert not corr[0, 0].any() and not corr[0, :, 0].any()


def test_no_correlation_with_a_code_flat_on_the_common_days():
    """Code 0 moves, then stays at one return on the 30 days code 1 trades: over their common
    days its variance is float32 rounding of the squares it is cancelled from, not a spread."""
    for seed in range(20):
        returns = np.random.default_rng(seed).normal(0, 0.01, (120, 4))
        returns[-30:, 0] = 0.05
        returns[:-30, 1] = np.nan
        corr, eligible = rolling_correlation(
            torch.as_tensor(returns), torch.tensor([119]), lookback=120, min_obs=20
        )
        assert eligible[0].tolist() == [True, True, True, True]
        assert corr[0, 0, 1] == 0.0 and corr[0, 1, 0] == 0.0
        assert corr[0, 1, 2] != 0.0  # code 1 is correlated with codes that move


@pytest.mark.parametrize("residualize", ["none", "sector33"])
def test_a_constant_price_stock_changes_no_graph_or_peer_input_up_to_t(
    rng, make_panel, factor_returns, residualize
):
    """Change every close after t of a panel in which one stock does not move for 190 days."""
    returns, sectors = factor_returns(rng, 300, [6, 6, 6, 6])
    returns[60:250, 5] = 0.0  # code 10050: a constant price, while it trades
    panel = make_panel(returns, sectors)
    t = panel["Date"].unique().sort()[220]
    moved = panel.with_columns(
        pl.when(pl.col("Date") > t)
        .then(pl.col("close") * pl.lit(rng.uniform(0.5, 2.0, panel.height)))
        .otherwise(pl.col("close"))
    )
    config = GraphConfig(
        residualize=residualize,
        beta_window=60,
        winsorize=3.0,
        lookback=120,
        min_obs=60,
        k=3,
        candidates=None,
        threshold=0.1,
        rebuild_every=5,
        min_codes=5,
        progress=False,
    )
    before = pl.col("Date") <= t
    tables = []
    for p in (panel, moved):
        graphs = build_graphs(p, config)
        peers = graph_peer_table(peer_returns(p, residualize, 60), graphs.edges)
        tables.append((graphs.edges, graphs.nodes, peers))
    for base, perturbed in zip(*tables, strict=True):
        assert base.filter(before).equals(perturbed.filter(before))
    assert not tables[0][2].filter(~before).equals(tables[1][2].filter(~before))
    if residualize == "none":  # graphs built on days 180 … 220 see its flat returns only
        flat_days = panel["Date"].unique().sort()[180:221].implode()
        flat_nodes = tables[0][1].filter(pl.col("Date").is_in(flat_days))
        assert flat_nodes.height > 0 and "10050" not in flat_nodes["Code"].to_list()
