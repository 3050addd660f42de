import logging

import numpy as np
import polars as pl
import pytest

from atft_kedro.graph.build import GraphConfig, build_graphs

SMALL = dict(
    residualize="none",
    lookback=20,
    min_obs=15,
    k=3,
    threshold=0.3,
    shrinkage=0.1,
    min_codes=3,
    winsorize=None,
    candidates=None,
    beta_window=None,
    rebuild_every=1,
)


def _config(**overrides):
    return GraphConfig(**(SMALL | {"progress": False} | overrides))


def _pairs(edges, date=None):
    day = edges if date is None else edges.filter(pl.col("Date") == date)
    return set(zip(day["src_code"], day["dst_code"], strict=True))


@pytest.fixture
def factor_panel(rng, make_panel, factor_returns):
    returns, sectors = factor_returns(rng, 60, [6, 6, 6, 6])
    returns[:, 20:][rng.random((60, 4)) < 0.1] = np.nan  # some no-trade days
    markets = ["0111", "0112"] * 12
    return make_panel(returns, sectors, markets)


def test_edges_match_hand_computation(rng, make_panel):
    returns = rng.normal(0, 0.02, (25, 5))
    returns[:, 1] += returns[:, 0]
    returns[:, 3] -= 0.8 * returns[:, 2]
    sectors, markets = ["0050", "0050", "0100", "0050", "0100"], ["0111"] * 4 + ["0112"]
    panel = make_panel(returns, sectors, markets)
    graphs = build_graphs(panel, _config(k=2, min_codes=2))

    last = panel["Date"].max()
    corr = 0.9 * np.corrcoef(returns[-20:].T)
    expected = {}
    for i in range(5):
        score = np.abs(corr[i])
        score[i] = -1
        for j in np.argsort(-score)[:2]:
            if score[j] >= 0.3:
                expected[min(i, j), max(i, j)] = corr[i, j]
    day = graphs.edges.filter(pl.col("Date") == last)
    codes = sorted(panel["Code"].unique())
    got = {(codes.index(r["src_code"]), codes.index(r["dst_code"])): r for r in day.to_dicts()}
    assert set(got) == set(expected) | {(j, i) for i, j in expected}
    for (i, j), row in got.items():
        assert row["corr"] == pytest.approx(expected[min(i, j), max(i, j)], abs=1e-5)
        assert row["same_sector33"] == int(sectors[i] == sectors[j])
        assert row["same_market"] == int(markets[i] == markets[j])


def test_graphs_are_symmetric_simple_and_respect_k_and_threshold(factor_panel):
    config = _config(threshold=0.35)
    edges = build_graphs(factor_panel, config).edges
    assert edges.height > 0
    assert (
        edges.select(pl.struct("Date", "src_code", "dst_code").is_duplicated().any()).item()
        is False
    )
    assert (edges["src_code"] != edges["dst_code"]).all()
    assert (edges["corr"].abs() >= 0.35).all()
    reverse = edges.select("Date", src_code="dst_code", dst_code="src_code", corr="corr")
    assert reverse.sort(pl.all()).equals(
        edges.select("Date", "src_code", "dst_code", "corr").sort(pl.all())
    )
    # each edge is among the k strongest of at least one of its ends
    rank = pl.col("corr").abs().rank("ordinal", descending=True).over("Date", "src_code")
    proposed = edges.with_columns(rank.alias("rank")).filter(pl.col("rank") <= config.k)
    undirected = edges.select(
        "Date",
        lo=pl.min_horizontal("src_code", "dst_code"),
        hi=pl.max_horizontal("src_code", "dst_code"),
    ).unique()
    covered = proposed.select(
        "Date",
        lo=pl.min_horizontal("src_code", "dst_code"),
        hi=pl.max_horizontal("src_code", "dst_code"),
    ).unique()
    assert undirected.join(covered, on=["Date", "lo", "hi"], how="anti").height == 0


def test_code_node_map_round_trips_and_matches_edges(factor_panel):
    graphs = build_graphs(factor_panel, _config())
    nodes = graphs.nodes
    per_day = nodes.group_by("Date").agg(
        (pl.col("node_idx") == pl.int_range(pl.len())).all().alias("dense"),
        pl.col("Code").is_unique().all().alias("unique"),
        pl.col("Code").is_sorted().alias("sorted"),
    )
    assert per_day.select(pl.all_horizontal("dense", "unique", "sorted").all()).item()
    # code -> node_idx -> code is the identity, and every edge end is a node of its date
    idx = nodes.select("Date", "Code", "node_idx")
    mapped = (
        graphs.edges.join(idx, left_on=["Date", "src_code"], right_on=["Date", "Code"])
        .join(idx, left_on=["Date", "dst_code"], right_on=["Date", "Code"], suffix="_dst")
        .join(idx, left_on=["Date", "node_idx"], right_on=["Date", "node_idx"])
    )
    assert mapped.height == graphs.edges.height
    assert (mapped["Code"] == mapped["src_code"]).all()
    # node attributes are the panel's on that date
    joined = nodes.join(factor_panel, on=["Date", "Code"], suffix="_panel")
    assert joined.height == nodes.height
    assert (joined["sector33"] == joined["sector33_panel"]).all()


def test_changing_returns_after_t_changes_no_graph_up_to_t(factor_panel, rng):
    dates = factor_panel["Date"].unique().sort()
    t = dates[40]
    shocked = factor_panel.with_columns(
        pl.when(pl.col("Date") > t)
        .then(pl.col("close") * pl.lit(rng.lognormal(0, 0.3, factor_panel.height)))
        .otherwise(pl.col("close"))
    )
    for rebuild_every in (1, 3):
        before = build_graphs(factor_panel, _config(rebuild_every=rebuild_every))
        after = build_graphs(shocked, _config(rebuild_every=rebuild_every))
        for name in ("edges", "nodes"):
            old, new = getattr(before, name), getattr(after, name)
            assert old.filter(pl.col("Date") <= t).equals(new.filter(pl.col("Date") <= t))
        assert not before.edges.filter(pl.col("Date") > t).equals(
            after.edges.filter(pl.col("Date") > t)
        )


def test_rebuild_every_reuses_the_last_earlier_graph(factor_panel):
    # code 10000 stops trading after day 45: a reused graph must drop it
    panel = factor_panel.filter(
        (pl.col("Code") != "10000") | (pl.col("Date") <= factor_panel["Date"].unique().sort()[45])
    )
    daily = build_graphs(panel, _config())
    weekly = build_graphs(panel, _config(rebuild_every=5))
    dates = panel["Date"].unique().sort()
    built_on = weekly.nodes.group_by("Date").agg(pl.col("built_on").unique())
    assert (built_on["built_on"].list.len() == 1).all()
    for date, (source,) in zip(built_on["Date"], built_on["built_on"], strict=True):
        assert source == dates[(dates.index_of(date) // 5) * 5] <= date
        present = set(panel.filter(pl.col("Date") == date)["Code"])
        reused = {(s, d) for s, d in _pairs(daily.edges, source) if s in present and d in present}
        assert _pairs(weekly.edges, date) == reused
    assert weekly.nodes.filter(pl.col("Date") > dates[45])["Code"].is_in(["10000"]).sum() == 0
    assert weekly.nodes.filter(pl.col("Date") == dates[45])["Code"].is_in(["10000"]).sum() == 1


def test_codes_with_too_few_returns_get_no_node_and_no_fake_edges(rng, make_panel):
    returns = rng.normal(0, 0.02, (50, 6))
    returns[:, 5] = returns[:, 0]  # a perfect twin of code 0 ...
    returns[:35, 5] = np.nan  # ... listed late: trades from day 35, 13 returns, 15 needed
    panel = make_panel(returns)
    graphs = build_graphs(panel, _config())
    late = "10050"
    assert late not in set(graphs.nodes["Code"])
    assert late not in set(graphs.edges["src_code"]) | set(graphs.edges["dst_code"])
    longer = build_graphs(make_panel(np.vstack([returns, rng.normal(0, 0.02, (3, 6))])), _config())
    assert late in set(longer.nodes.filter(pl.col("Date") == longer.nodes["Date"].max())["Code"])


def test_too_few_codes_gives_an_empty_graph_and_a_warning(rng, make_panel, caplog):
    panel = make_panel(rng.normal(0, 0.02, (30, 2)))
    with caplog.at_level(logging.WARNING, logger="atft_kedro.graph.build"):
        graphs = build_graphs(panel, _config())
    assert graphs.nodes.height == 0 and graphs.edges.height == 0
    assert "30 of 30 dates have fewer than min_codes=3" in caplog.text
    assert graphs.edges.columns == [
        "Date",
        "src_code",
        "dst_code",
        "corr",
        "same_market",
        "same_sector33",
    ]


def test_planted_sector_structure_is_recovered(rng, make_panel, factor_returns):
    returns, sectors = factor_returns(rng, 80, [10] * 8)
    graphs = build_graphs(make_panel(returns, sectors), _config(lookback=60, min_obs=40, k=20))
    share = graphs.edges["same_sector33"].mean()
    random_share = (10 * 9 * 8) / (80 * 79)
    assert share >= 3 * random_share


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="unknown key"):
        GraphConfig.from_params({"lookbak": 60})
    with pytest.raises(ValueError, match="rebuild_every"):
        GraphConfig.from_params({"rebuild_every": 0})
    assert GraphConfig.from_params({"k": 5}).k == 5


def test_unknown_similarity_is_an_error_not_a_fallback(factor_panel):
    with pytest.raises(ValueError, match="method must be 'pearson' or 'ewm'"):
        build_graphs(factor_panel, _config(method="cosine"))
    ewm = build_graphs(factor_panel, _config(method="ewm", halflife=5.0))
    pearson = build_graphs(factor_panel, _config())
    assert ewm.edges.height > 0 and not ewm.edges.equals(pearson.edges)


def test_dates_from_gives_the_same_graphs_as_a_full_build(factor_panel):
    start = factor_panel["Date"].unique().sort()[37]
    for rebuild_every in (1, 3):
        full = build_graphs(factor_panel, _config(rebuild_every=rebuild_every))
        late = build_graphs(factor_panel, _config(rebuild_every=rebuild_every), dates_from=start)
        assert late.nodes["Date"].min() == start
        assert late.edges.equals(full.edges.filter(pl.col("Date") >= start))
        assert late.nodes.equals(full.nodes.filter(pl.col("Date") >= start))


def test_sector_residuals_reveal_a_cross_sector_cluster(rng, make_panel):
    """Strong sector factors hide a weak cluster that cuts across sectors; residualising by sector
    brings the cluster's pairs to the top of the neighbour lists."""
    days, sizes = 200, [6] * 6
    sector = np.repeat(np.arange(6), sizes)
    cluster = np.tile(np.arange(6), 6)  # one member of each cluster in every sector
    returns = (
        rng.normal(0, 0.01, (days, 1))
        + 1.5 * rng.normal(0, 0.01, (days, 6))[:, sector]
        + 0.8 * rng.normal(0, 0.01, (days, 6))[:, cluster]
        + rng.normal(0, 0.01, (days, sector.size))
    )
    panel = make_panel(returns, [f"{50 + s:04d}" for s in sector])
    codes = sorted(panel["Code"].unique())
    share = {}
    for by in ("none", "sector33"):
        config = _config(residualize=by, lookback=120, min_obs=100, k=5, threshold=0.0)
        edges = build_graphs(panel, config).edges.filter(pl.col("Date") == panel["Date"].max())
        src = [codes.index(c) for c in edges["src_code"]]
        dst = [codes.index(c) for c in edges["dst_code"]]
        share[by] = np.mean(cluster[src] == cluster[dst])
    assert share["none"] < 0.3 < 0.6 < share["sector33"], share
