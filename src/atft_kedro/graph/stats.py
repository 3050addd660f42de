"""Per-date statistics of the graphs, computed for all dates at once.

The values equal what NetworkX gives on :func:`atft_kedro.graph.nx_views.day_graph` (the tests
check this); they are computed with polars and one sparse connected-components pass so that
hundreds of dates with thousands of nodes take seconds.

same_sector33_random is the share of same-sector pairs among all node pairs of the date,
Σ_s n_s (n_s - 1) / (n (n - 1)), i.e. what edges drawn at random would give; codes without a
sector count as matching nobody. sector33_modularity is Newman's modularity of the partition by
sector33 (codes without a sector are singletons): Q = same-sector edge share - Σ_c (D_c / 2m)²,
with D_c the degree sum of community c and m the number of edges; null on a date without edges.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _components(edges: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """Connected components per date, from one pass over the block-diagonal union of all days."""
    ids = nodes.select("Date", "Code").with_row_index("id")
    ends = edges.select("Date", "src_code", "dst_code")
    src = ends.join(ids, left_on=["Date", "src_code"], right_on=["Date", "Code"], how="left")
    dst = ends.join(ids, left_on=["Date", "dst_code"], right_on=["Date", "Code"], how="left")
    if src["id"].null_count() or dst["id"].null_count():
        raise ValueError("graph_edges: some edges join a (Date, code) missing from graph_nodes")
    n = ids.height
    adjacency = coo_matrix(
        (np.ones(edges.height, dtype=np.int8), (src["id"].to_numpy(), dst["id"].to_numpy())),
        shape=(n, n),
    )
    _, label = connected_components(adjacency, directed=False)
    return (
        ids.with_columns(pl.Series("component", label))
        .group_by("Date")
        .agg(pl.col("component").n_unique().cast(pl.Int64).alias("components"))
    )


STATS_COLUMNS = (
    "Date",
    "built_on",
    "nodes",
    "edges",
    "mean_degree",
    "median_degree",
    "isolated_nodes",
    "components",
    "same_sector33_share",
    "same_sector33_random",
    "same_sector33_ratio",
    "same_market_share",
    "sector33_modularity",
)


def graph_stats(edges: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """One row per date of ``nodes``: size, degree, components, sector and market structure.

    ``same_sector33_random`` is the same-sector share of a uniformly random edge and
    ``sector33_modularity`` Newman's modularity of the sector partition.
    """
    degree = edges.group_by("Date", "src_code").agg(pl.len().alias("degree"))
    node_degree = nodes.join(
        degree, left_on=["Date", "Code"], right_on=["Date", "src_code"], how="left"
    ).with_columns(pl.col("degree").fill_null(0).cast(pl.Int64))

    per_node = node_degree.group_by("Date").agg(
        pl.len().cast(pl.Int64).alias("nodes"),
        (pl.col("degree").sum() // 2).alias("edges"),
        pl.col("degree").mean().alias("mean_degree"),
        pl.col("degree").median().alias("median_degree"),
        (pl.col("degree") == 0).sum().cast(pl.Int64).alias("isolated_nodes"),
        pl.col("built_on").first(),
    )
    shares = edges.group_by("Date").agg(
        pl.col("same_sector33").cast(pl.Float64).mean().alias("same_sector33_share"),
        pl.col("same_market").cast(pl.Float64).mean().alias("same_market_share"),
    )
    n = pl.col("nodes").cast(pl.Float64)
    two_m = 2.0 * pl.col("edges").cast(pl.Float64)
    return (
        per_node.join(_components(edges, nodes), on="Date", how="left")
        .join(_sector_sums(nodes, node_degree), on="Date", how="left")
        .join(shares, on="Date", how="left")
        .with_columns(
            (pl.col("same_pairs").fill_null(0.0) / (n * (n - 1))).alias("same_sector33_random"),
        )
        .with_columns(
            (pl.col("same_sector33_share") / pl.col("same_sector33_random")).alias(
                "same_sector33_ratio"
            ),
            pl.when(pl.col("edges") > 0)
            .then(pl.col("same_sector33_share") - pl.col("d2") / (two_m * two_m))
            .alias("sector33_modularity"),
        )
        .select(STATS_COLUMNS)
        .sort("Date")
    )


def _sector_sums(nodes: pl.DataFrame, node_degree: pl.DataFrame) -> pl.DataFrame:
    """Date, same_pairs (ordered same-sector node pairs), d2 (sum of squared sector degree sums)."""
    same_pairs = (
        nodes.filter(pl.col("sector33").is_not_null())
        .group_by("Date", "sector33")
        .agg(pl.len().cast(pl.Float64).alias("size"))
        .group_by("Date")
        .agg((pl.col("size") * (pl.col("size") - 1)).sum().alias("same_pairs"))
    )
    # degree sum per sector community; a node without a sector is its own community
    community = pl.coalesce(pl.col("sector33"), pl.lit("code:") + pl.col("Code"))
    d2 = (
        node_degree.group_by("Date", community.alias("community"))
        .agg(pl.col("degree").sum().cast(pl.Float64).alias("d"))
        .group_by("Date")
        .agg((pl.col("d") ** 2).sum().alias("d2"))
    )
    return same_pairs.join(d2, on="Date", how="full", coalesce=True)


def cluster_recovery(
    edges: pl.DataFrame,
    graph_peers: pl.DataFrame,
    cluster_peers: pl.DataFrame,
    clusters: pl.DataFrame,
) -> pl.DataFrame:
    """How well each day's graph finds known groups (the synthetic market's latent clusters).

    One row per date with edges: ``in_cluster_share`` (edges joining two members of one
    cluster), ``in_cluster_random`` (the same share over all pairs of that day's nodes, what
    random edges would give) and ``peer_corr`` (correlation across codes of the graph's
    ``peer_ret_1d`` with the same feature built from the true clusters).
    """
    group = clusters.select("Code", pl.col("cluster").cast(pl.Int64))
    ends = (
        edges.select("Date", "src_code", "dst_code")
        .join(group.rename({"Code": "src_code", "cluster": "a"}), on="src_code", how="left")
        .join(group.rename({"Code": "dst_code", "cluster": "b"}), on="dst_code", how="left")
    )
    share = ends.group_by("Date").agg(
        (pl.col("a") == pl.col("b")).fill_null(False).mean().alias("in_cluster_share")
    )
    nodes = edges.select("Date", pl.col("src_code").alias("Code")).unique()
    sizes = (
        nodes.join(group, on="Code", how="inner")
        .group_by("Date", "cluster")
        .agg(pl.len().cast(pl.Float64).alias("k"))
        .group_by("Date")
        .agg(
            (
                (pl.col("k") * (pl.col("k") - 1)).sum()
                / (pl.col("k").sum() * (pl.col("k").sum() - 1))
            ).alias("in_cluster_random")
        )
    )
    both = graph_peers.select("Date", "Code", "peer_ret_1d").join(
        cluster_peers.select("Date", "Code", pl.col("peer_ret_1d").alias("true")),
        on=["Date", "Code"],
    )
    finite = pl.col("peer_ret_1d").is_finite() & pl.col("true").is_finite()
    corr = (
        both.filter(finite).group_by("Date").agg(pl.corr("peer_ret_1d", "true").alias("peer_corr"))
    )
    return share.join(sizes, on="Date", how="left").join(corr, on="Date", how="left").sort("Date")
