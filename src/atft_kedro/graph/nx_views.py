"""NetworkX view of one day's graph."""

from __future__ import annotations

import datetime as dt

import networkx as nx
import polars as pl

NODE_ATTRIBUTES = ("Code", "market", "sector33", "sector17")
EDGE_ATTRIBUTES = ("corr", "same_market", "same_sector33")


def day_graph(edges: pl.DataFrame, nodes: pl.DataFrame, date: dt.date) -> nx.Graph:
    """The undirected graph of ``date``: nodes keyed by node_idx, as in the batch's edge_index.

    Node attributes: code, market, sector33, sector17. Edge attributes: corr, same_market,
    same_sector33. A date without a graph gives an empty ``nx.Graph``.
    """
    day_nodes = nodes.filter(pl.col("Date") == date).select("node_idx", *NODE_ATTRIBUTES)
    index = dict(zip(day_nodes["Code"], day_nodes["node_idx"], strict=True))
    graph = nx.Graph(date=date)
    graph.add_nodes_from(
        (row["node_idx"], {"code": row["Code"]} | {a: row[a] for a in NODE_ATTRIBUTES[1:]})
        for row in day_nodes.iter_rows(named=True)
    )
    day_edges = edges.filter(pl.col("Date") == date)
    unknown = day_edges.filter(
        ~pl.col("src_code").is_in(day_nodes["Code"].implode())
        | ~pl.col("dst_code").is_in(day_nodes["Code"].implode())
    )
    if unknown.height:
        row = unknown.row(0, named=True)
        raise ValueError(
            f"graph_edges: {unknown.height} edges on {date} join a code missing from graph_nodes "
            f"(first: {row['src_code']} -> {row['dst_code']})"
        )
    graph.add_edges_from(
        (index[row["src_code"]], index[row["dst_code"]], {a: row[a] for a in EDGE_ATTRIBUTES})
        for row in day_edges.iter_rows(named=True)
    )
    return graph
