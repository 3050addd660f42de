"""top_k_edges: each node keeps its k strongest proposals, then the union is symmetric."""

import datetime as dt

import polars as pl

from atft_kedro.hpo.graph_k import top_k_edges


def test_top_k_by_abs_corr_then_union():
    pairs = {("A", "B"): 0.9, ("A", "C"): -0.8, ("A", "D"): 0.4, ("B", "C"): 0.5, ("C", "D"): 0.6}
    rows = [(s, d, c) for (a, b), c in pairs.items() for s, d in ((a, b), (b, a))]
    edges = pl.DataFrame(
        {
            "Date": [dt.date(2024, 1, 4)] * len(rows),
            "src_code": [r[0] for r in rows],
            "dst_code": [r[1] for r in rows],
            "corr": [r[2] for r in rows],
            "same_market": [0] * len(rows),
            "same_sector33": [1] * len(rows),
        },
    )
    out = top_k_edges(edges, 1)
    # proposals: A→B (0.9), B→A (0.9), C→A (|-0.8|), D→C (0.6); union with reverses
    got = set(zip(out["src_code"], out["dst_code"], strict=True))
    want = {("A", "B"), ("B", "A"), ("C", "A"), ("A", "C"), ("D", "C"), ("C", "D")}
    assert got == want
    assert out.height == len(want)  # no duplicates
    assert top_k_edges(edges, 3).height == edges.height  # k ≥ degree keeps everything
