import numpy as np
import pytest
import torch

from atft_kedro.graph.knn import knn_edges


def _edge_set(edges, graph=0):
    on = edges.graph == graph
    return {(int(s), int(d)) for s, d in zip(edges.src[on], edges.dst[on], strict=True)}


def test_hand_computed_tiny_graph():
    corr = torch.tensor(
        [
            [1.0, 0.9, -0.5, 0.1],
            [0.9, 1.0, 0.4, 0.2],
            [-0.5, 0.4, 1.0, 0.35],
            [0.1, 0.2, 0.35, 1.0],
        ]
    ).unsqueeze(0)
    eligible = torch.ones(1, 4, dtype=torch.bool)
    edges = knn_edges(corr, eligible, k=1, threshold=0.3)
    # proposals: 0→1 (0.9), 1→0 (0.9), 2→0 (|-0.5|), 3→2 (0.35); union of undirected pairs
    expected = {(0, 1), (0, 2), (2, 3)}
    assert _edge_set(edges) == expected | {(d, s) for s, d in expected}
    corr_of = {
        (int(s), int(d)): c for s, d, c in zip(edges.src, edges.dst, edges.corr, strict=True)
    }
    assert corr_of[2, 0] == corr_of[0, 2] == pytest.approx(-0.5)

    strict = knn_edges(corr, eligible, k=1, threshold=0.6)
    assert _edge_set(strict) == {(0, 1), (1, 0)}
    wide = knn_edges(corr, eligible, k=3, threshold=0.3)
    assert (1, 2) in _edge_set(wide) and (0, 3) not in _edge_set(wide)


def _reference(corr, eligible, k, threshold):
    """Edge set by the definition, node by node."""
    pairs = set()
    n = corr.shape[0]
    for i in np.flatnonzero(eligible):
        score = np.abs(corr[i]).astype(float)
        score[~eligible] = -1
        score[i] = -1
        for j in np.argsort(-score, kind="stable")[:k]:
            if score[j] >= threshold:
                pairs |= {(i, j), (j, i)}
    assert all(i < n and j < n for i, j in pairs)
    return pairs


def test_matches_definition_on_random_matrices(rng):
    b, n, k, threshold = 3, 40, 4, 0.25
    x = rng.normal(size=(b, 60, n)) + rng.normal(size=(b, 60, 1)) * 0.4
    corr = torch.as_tensor(np.stack([np.corrcoef(d.T) for d in x]), dtype=torch.float32)
    eligible = torch.as_tensor(rng.random((b, n)) > 0.2)
    edges = knn_edges(corr, eligible, k=k, threshold=threshold)
    scratch = corr.clone()
    again = knn_edges(scratch, eligible, k=k, threshold=threshold, overwrite=True)
    for name in ("graph", "src", "dst", "corr"):
        np.testing.assert_array_equal(getattr(edges, name), getattr(again, name))
    assert not torch.equal(scratch, corr)  # overwritten, while corr was left alone above
    for g in range(b):
        assert _edge_set(edges, g) == _reference(corr[g].numpy(), eligible[g].numpy(), k, threshold)

    keys = (edges.graph * n + edges.src) * n + edges.dst
    assert np.all(np.diff(keys) > 0)  # sorted, no duplicates
    assert np.all(edges.src != edges.dst)
    assert np.all(np.abs(edges.corr) >= threshold)
    assert np.all(eligible.numpy()[edges.graph, edges.src])
    np.testing.assert_array_equal(edges.corr, corr.numpy()[edges.graph, edges.src, edges.dst])
    # the union can give a node more than k neighbours, but each pair has a proposer among its top-k
    out_degree = np.bincount(edges.graph * n + edges.src, minlength=b * n)
    assert out_degree.max() > k


def test_no_candidates_gives_no_edges():
    corr = torch.eye(3).unsqueeze(0) * 0.9 + 0.1
    eligible = torch.tensor([[True, False, False]])
    edges = knn_edges(corr, eligible, k=2, threshold=0.0)
    assert edges.src.size == 0
    with pytest.raises(ValueError, match="threshold"):
        knn_edges(corr, eligible, k=2, threshold=1.5)


def test_shared_neighbours_rank_a_group_mate_above_a_chance_correlate():
    """Node 0 correlates 0.30 with node 4 by chance and 0.25 with its group mate 1; 1 and 0 share
    group mates 2 and 3, node 4 shares none of 0's candidates: by |ρ| alone 0 proposes 4, with the
    shared-neighbour score it proposes 1."""
    corr = torch.eye(5)
    for i, j, rho in [
        (0, 1, 0.25),
        (0, 2, 0.4),
        (0, 3, 0.4),
        (1, 2, 0.4),
        (1, 3, 0.4),
        (2, 3, 0.4),
        (0, 4, 0.3),
    ]:
        corr[i, j] = corr[j, i] = rho
    eligible = torch.ones(1, 5, dtype=torch.bool)
    plain = knn_edges(corr.unsqueeze(0), eligible, k=3, threshold=0.2)
    shared = knn_edges(corr.unsqueeze(0), eligible, k=3, threshold=0.2, candidates=4)
    proposes = {"plain": _edge_set(plain), "shared": _edge_set(shared)}
    # 0's top 3 by |ρ|: 2, 3, 4; with shared neighbours: 2, 3, 1 (4 only joins as 4's own proposal)
    assert (0, 4) in proposes["plain"] and (0, 1) not in {
        (s, d) for s, d in proposes["plain"] if s == 0 and (d, s) not in proposes["plain"]
    }
    assert (0, 1) in proposes["shared"]
    # the shared score only re-ranks: edges still carry ρ and respect the threshold
    np.testing.assert_array_equal(shared.corr, corr.numpy()[shared.src, shared.dst])
    assert np.all(np.abs(shared.corr) >= 0.2)


def test_shared_neighbours_find_planted_groups_better_than_rho(rng):
    """Groups of 6 with within-group ρ ≈ 0.25 among 120 series over 250 days: among each node's top
    5, the shared-neighbour score picks more group mates than |ρ| alone."""
    n, days, size = 120, 250, 6
    group = np.arange(n) // size
    x = rng.normal(size=(days, n)) + 0.6 * rng.normal(size=(days, n // size))[:, group]
    corr = torch.as_tensor(np.corrcoef(x.T), dtype=torch.float32).unsqueeze(0)
    eligible = torch.ones(1, n, dtype=torch.bool)
    precision = {}
    for name, k_candidates in (("rho", None), ("shared", 15)):
        edges = knn_edges(corr.clone(), eligible, k=5, threshold=0.0, candidates=k_candidates)
        precision[name] = np.mean(group[edges.src] == group[edges.dst])
    assert precision["shared"] > precision["rho"] + 0.03, precision
