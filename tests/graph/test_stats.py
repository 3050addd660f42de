import datetime as dt
import itertools

import networkx as nx
import numpy as np
import polars as pl
import pytest
from networkx.algorithms.community import modularity

from atft_kedro.graph.build import GraphConfig, build_graphs
from atft_kedro.graph.nx_views import day_graph
from atft_kedro.graph.stats import cluster_recovery, graph_stats


@pytest.fixture
def graphs(rng, make_panel, factor_returns):
    returns, sectors = factor_returns(rng, 40, [6, 6, 4, 4], loading=0.6)
    sectors[-2:] = [None, None]  # unknown sector: matches nobody, a singleton community
    returns[:, 1] = rng.normal(0, 0.02, 40)  # probably isolated
    markets = ["0111", "0112"] * 10
    config = GraphConfig(
        residualize="none",
        lookback=15,
        min_obs=12,
        k=2,
        threshold=0.45,
        min_codes=3,
        rebuild_every=1,
        progress=False,
    )
    return build_graphs(make_panel(returns, sectors, markets), config)


def test_stats_agree_with_networkx(graphs):
    stats = graph_stats(graphs.edges, graphs.nodes)
    assert stats["Date"].to_list() == graphs.nodes["Date"].unique().sort().to_list()
    assert stats["isolated_nodes"].max() > 0 and stats["components"].max() > 1
    for row in stats.iter_rows(named=True):
        g = day_graph(graphs.edges, graphs.nodes, row["Date"])
        degrees = [d for _, d in g.degree()]
        assert row["nodes"] == g.number_of_nodes()
        assert row["edges"] == g.number_of_edges()
        assert row["mean_degree"] == pytest.approx(np.mean(degrees))
        assert row["median_degree"] == pytest.approx(np.median(degrees))
        assert row["isolated_nodes"] == nx.number_of_isolates(g)
        assert row["components"] == nx.number_connected_components(g)

        sector = nx.get_node_attributes(g, "sector33")
        same = [sector[u] is not None and sector[u] == sector[v] for u, v in g.edges]
        pairs = itertools.combinations(g.nodes, 2)
        random_share = np.mean([sector[u] is not None and sector[u] == sector[v] for u, v in pairs])
        market = nx.get_node_attributes(g, "market")
        assert row["same_sector33_random"] == pytest.approx(random_share)
        assert row["built_on"] == row["Date"]
        if g.number_of_edges() == 0:
            assert row["sector33_modularity"] is None
            continue
        assert row["same_sector33_share"] == pytest.approx(np.mean(same))
        assert row["same_sector33_ratio"] == pytest.approx(np.mean(same) / random_share)
        assert row["same_market_share"] == pytest.approx(
            np.mean([market[u] == market[v] for u, v in g.edges])
        )
        communities = {}
        for node, s in sector.items():
            communities.setdefault(s if s is not None else f"alone{node}", set()).add(node)
        assert row["sector33_modularity"] == pytest.approx(modularity(g, communities.values()))


@pytest.fixture(scope="module")
def small_market():
    from atft_kedro.market.panel import build_panel
    from atft_kedro.market.synthetic import SyntheticMarket, generate_market
    from atft_kedro.market.synthetic_config import market_config

    market = generate_market("small", seed=42)
    panel = build_panel(market["daily_quotes"], market["listed_info"])
    universe = SyntheticMarket(market_config("small"), 42).universe
    clusters = dict(zip(universe.codes.tolist(), universe.cluster.tolist(), strict=True))
    return panel, clusters


# The first version's graph: raw returns, 60 days, top 20 by |ρ| >= 0.3.
RAW = GraphConfig(
    residualize="none",
    winsorize=None,
    lookback=60,
    min_obs=40,
    k=20,
    candidates=None,
    threshold=0.3,
    progress=False,
)


@pytest.mark.slow
def test_planted_sector_structure_on_the_synthetic_market(small_market):
    """On the `small` synthetic preset, the raw-return graph's same-sector edges are >= 3x what
    random pairs give (the default graph removes the sector mean first: it looks beyond sectors)."""
    panel, _ = small_market
    graphs = build_graphs(panel, RAW)
    stats = graph_stats(graphs.edges, graphs.nodes).filter(pl.col("edges") > 0)
    assert stats.height > 0
    share = graphs.edges["same_sector33"].mean()
    random_share = stats["same_sector33_random"].mean()
    assert share >= 3 * random_share, f"same-sector share {share:.3f}, random {random_share:.3f}"


@pytest.mark.slow
def test_default_graph_finds_the_latent_lead_lag_clusters(small_market):
    """The planted lead-lag runs through 30 latent clusters that cut across sectors: the default
    graph (β- and sector-residual, winsorised, 500-day, shared-neighbour ranked) puts >= 3x more
    of its edges inside them than the raw 60-day graph of the first version, and the majority of
    them (random pairs: 1/30)."""
    panel, clusters = small_market
    share = {}
    for name, config in (("raw", RAW), ("default", GraphConfig(progress=False))):
        edges = build_graphs(panel, config).edges
        src = edges["src_code"].replace_strict(clusters).to_numpy()
        dst = edges["dst_code"].replace_strict(clusters).to_numpy()
        share[name] = float(np.mean(src == dst))
    assert share["default"] >= max(3 * share["raw"], 0.6), share


def test_cluster_recovery_by_hand():
    day = dt.date(2024, 1, 2)
    codes = ["a", "b", "c", "d"]
    clusters = pl.DataFrame({"Code": codes, "cluster": [0, 0, 1, 1]})
    pairs = [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("c", "d"), ("d", "c")]
    edges = pl.DataFrame(
        {"Date": [day] * 6, "src_code": [p[0] for p in pairs], "dst_code": [p[1] for p in pairs]}
    )
    graph = pl.DataFrame({"Date": [day] * 4, "Code": codes, "peer_ret_1d": [1.0, 2.0, 3.0, 5.0]})
    true = graph.with_columns(pl.col("peer_ret_1d") * 2 + 1)
    out = cluster_recovery(edges, graph, true, clusters)
    assert out.row(0, named=True) == {
        "Date": day,
        "in_cluster_share": pytest.approx(4 / 6),
        "in_cluster_random": pytest.approx((2 + 2) / 12),  # 2 pairs of 6, ordered
        "peer_corr": pytest.approx(1.0),
    }
