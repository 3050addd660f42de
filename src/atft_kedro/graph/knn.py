"""Thresholded k-nearest-neighbour edges from correlation matrices.

Each eligible node i proposes the at most ``k`` other eligible nodes j with the largest score,
keeping only those with |ρ_ij| ≥ ``threshold``. The graph is the union of the proposals made
symmetric: {i, j} is an edge if i proposed j or j proposed i. Every undirected edge is returned
once per direction, without duplicates or self-loops, carrying the same ρ_ij both ways.

The score is |ρ_ij|, or with ``candidates = K > k`` the shared-neighbour score
(Jarvis and Patrick, 1973, weighted): each node first lists its K largest |ρ| as candidates,
then ranks them by

    score_ij = |ρ_ij| + Σ_m w_im w_jm,   w_im = |ρ_im| if m is among i's K candidates, else 0,

so a candidate that also correlates with i's other candidates ranks up. Members of a latent group
share their group's other members as candidates; a pair that correlates by chance shares few.
With a 1/√T sampling error on every |ρ|, the sum over the group averages much of it away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DirectedEdges:
    """Edges of B graphs, one row per direction, sorted by (graph, src, dst).

    graph  int64 [E]   index of the graph (date) in the batch
    src    int64 [E]   node index in the correlation matrix
    dst    int64 [E]
    corr   float32 [E] ρ_src,dst
    """

    graph: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    corr: np.ndarray


def knn_edges(
    corr: torch.Tensor,
    eligible: torch.Tensor,
    *,
    k: int,
    threshold: float,
    candidates: int | None = None,
    min_shared: float = 0.0,
    overwrite: bool = False,
) -> DirectedEdges:
    """Symmetrised thresholded kNN edges of ``corr`` [B, N, N] over ``eligible`` [B, N] nodes.

    ``candidates``: K > k switches on the shared-neighbour score over each node's K largest |ρ|
    (None or K <= k: rank by |ρ| alone). ``overwrite=True`` uses ``corr`` as scratch space (its
    values are destroyed), which saves an N × N allocation per graph at J-Quants scale.
    """
    if k < 1:
        raise ValueError(f"graph: k must be >= 1, got {k}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"graph: threshold must be in [0, 1], got {threshold}")
    b, n, _ = corr.shape
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return DirectedEdges(empty, empty, empty, np.empty(0, dtype=np.float32))

    negative = torch.signbit(corr)
    top, neighbour, shared = _top_neighbours(corr, eligible, k, candidates, overwrite)

    keep = (top >= threshold) & eligible.unsqueeze(2)
    if shared is not None and min_shared > 0:
        keep &= shared >= min_shared
    graph, node, slot = keep.nonzero(as_tuple=True)
    other = neighbour[graph, node, slot]
    rho = top[graph, node, slot] * (1.0 - 2.0 * negative[graph, node, other])
    low, high = torch.minimum(node, other), torch.maximum(node, other)
    # undirected pairs, deduplicated and sorted; a pair proposed by both ends keeps one ρ
    pair, inverse = torch.unique((graph * n + low) * n + high, return_inverse=True)
    rho = torch.zeros(pair.numel(), dtype=rho.dtype).scatter_(0, inverse, rho)
    return _both_directions(pair, rho, n)


def _top_neighbours(
    corr: torch.Tensor,
    eligible: torch.Tensor,
    k: int,
    candidates: int | None,
    overwrite: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each node's k best neighbours by |ρ| (or by the shared-neighbour score over its
    ``candidates`` largest |ρ|): top |ρ| [B, N, k], neighbour index [B, N, k] and shared score
    [B, N, k] (None without candidates). ``corr`` [B, N, N] is overwritten when ``overwrite``."""
    n = corr.shape[1]
    score = corr.abs_() if overwrite else corr.abs()
    # an ineligible or identical neighbour scores -1, below any threshold
    if not eligible.all():
        score.mul_(eligible.unsqueeze(1)).sub_((~eligible).unsqueeze(1).to(score.dtype))
    score.diagonal(dim1=1, dim2=2).fill_(-1.0)
    if candidates is not None and candidates > k:
        return _shared_neighbour_top(score, min(k, n - 1), min(candidates, n - 1))
    top, neighbour = torch.topk(score, min(k, n - 1), dim=2)  # [B, N, k]
    return top, neighbour, None


def _both_directions(pair: torch.Tensor, rho: torch.Tensor, n: int) -> DirectedEdges:
    """The undirected pairs ``pair`` [P] ((graph · N + low) · N + high) with their ρ [P] as
    directed edges both ways, sorted by (graph, src, dst)."""
    graph, low, high = pair // (n * n), (pair // n) % n, pair % n

    both = torch.stack([torch.cat([graph, graph]), torch.cat([low, high]), torch.cat([high, low])])
    order = torch.argsort((both[0] * n + both[1]) * n + both[2])
    graph, src, dst = both[:, order].numpy()
    return DirectedEdges(graph, src, dst, torch.cat([rho, rho])[order].numpy())


def _shared_neighbour_top(
    score: torch.Tensor, k: int, candidates: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """|ρ|, index and shared weight [B, N, k] of each node's top-k candidates by shared-neighbour
    score.

    ``score`` [B, N, N] holds |ρ| (−1 for ineligible pairs and the diagonal); it is overwritten.
    """
    b, n, _ = score.shape
    top, neighbour = torch.topk(score, candidates, dim=2)  # [B, N, K]
    w = top.clamp_min(0.0)
    # reuse score as the sparse weight matrix W (row i: i's K candidate weights, 0 elsewhere)
    score.zero_().scatter_(2, neighbour, w)
    rows = torch.arange(b).view(b, 1, 1, 1)
    # shared[i, a] = Σ_c w[i, c] · W[neighbour[i, a], neighbour[i, c]]
    pair = score[rows, neighbour.unsqueeze(3), neighbour.unsqueeze(2)]  # [B, N, K, K]
    shared = (pair * w.unsqueeze(2)).sum(dim=3)
    rank = torch.topk(top + shared, k, dim=2).indices
    return top.gather(2, rank), neighbour.gather(2, rank), shared.gather(2, rank)
