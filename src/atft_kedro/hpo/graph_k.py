"""The kNN graph for a smaller k, derived from a built graph instead of rebuilding it.

In the graph (docs/design.md, Graph) each node proposes its top-k neighbours by |ρ| (above the
threshold) and the proposals are symmetrised by union. A node's top-k proposals are all among its
neighbours in the union graph, so for k' ≤ k its top-k' proposals are the top-k' of its union
neighbours: re-selecting them per (Date, node) and symmetrising again gives exactly the graph a
rebuild with k' would give (ties in |ρ| aside; with `rebuild_every` = 1). This makes `graph.k` a
cheap search dimension.
"""

from __future__ import annotations

import polars as pl

EDGE_COLUMNS = ("Date", "src_code", "dst_code", "corr", "same_market", "same_sector33")


def top_k_edges(edges: pl.DataFrame, k: int) -> pl.DataFrame:
    """Edges of the kNN graph with `k` neighbours per node, from a graph built with k_built ≥ k.

    `edges` follows the graph_edges contract (both directions present). Returns the same columns,
    both directions, no duplicates, sorted by Date, src_code, dst_code.
    """
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise ValueError(f"graph_edges: missing column(s) {missing} (have {edges.columns})")
    if k < 1:
        raise ValueError(f"graph k must be >= 1, got {k}")
    proposed = edges.filter(
        pl.col("corr").abs().rank("ordinal", descending=True).over("Date", "src_code") <= k
    )
    reverse = proposed.rename({"src_code": "dst_code", "dst_code": "src_code"})
    return (
        pl.concat([proposed, reverse.select(proposed.columns)])
        .unique(subset=["Date", "src_code", "dst_code"], keep="first")
        .sort("Date", "src_code", "dst_code")
        .select(EDGE_COLUMNS)
    )
