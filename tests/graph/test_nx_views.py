import polars as pl
import pytest

from atft_kedro.graph.build import GraphConfig, build_graphs
from atft_kedro.graph.nx_views import day_graph


@pytest.fixture
def graphs(rng, make_panel, factor_returns):
    returns, sectors = factor_returns(rng, 50, [5, 5, 5])
    markets = ["0111", "0112", "0113"] * 5
    config = GraphConfig(
        residualize="none", lookback=20, min_obs=15, k=3, min_codes=3, progress=False
    )
    return build_graphs(make_panel(returns, sectors, markets), config)


def test_day_graph_carries_the_tables(graphs):
    date = graphs.nodes["Date"].max()
    graph = day_graph(graphs.edges, graphs.nodes, date)
    nodes = graphs.nodes.filter(pl.col("Date") == date)
    edges = graphs.edges.filter(pl.col("Date") == date)
    assert sorted(graph.nodes) == nodes["node_idx"].to_list()
    assert 2 * graph.number_of_edges() == edges.height > 0
    for row in nodes.iter_rows(named=True):
        attrs = graph.nodes[row["node_idx"]]
        assert attrs == {
            "code": row["Code"],
            "market": row["market"],
            "sector33": row["sector33"],
            "sector17": row["sector17"],
        }
    code_of = dict(zip(nodes["node_idx"], nodes["Code"], strict=True))
    for u, v, attrs in graph.edges(data=True):
        row = edges.filter((pl.col("src_code") == code_of[u]) & (pl.col("dst_code") == code_of[v]))
        assert row.select("corr", "same_market", "same_sector33").to_dicts() == [attrs]


def test_day_graph_of_a_date_without_graph_is_empty(graphs):
    first = graphs.nodes["Date"].min()
    assert day_graph(graphs.edges, graphs.nodes, first.replace(year=2000)).number_of_nodes() == 0


def test_day_graph_rejects_edges_to_unknown_codes(graphs):
    date = graphs.nodes["Date"].max()
    nodes = graphs.nodes.filter(pl.col("Code") != graphs.edges["src_code"][-1])
    with pytest.raises(ValueError, match="graph_edges: .* missing from graph_nodes"):
        day_graph(graphs.edges, nodes, date)
