"""Graph attention over the day's stock graph (GATv2, Brody et al., 2022) with gated residual fusion.

Each layer is PyTorch Geometric's `GATv2Conv` with edge attributes [corr, same_market, same_sector33]:
`α_ij = softmax_j(aᵀ LeakyReLU(W_s h_j + W_t h_i + W_e e_ij))`. Self-loops are added with attribute
[1, 1, 1] (a stock is perfectly correlated with itself, same market, same sector), so a stock with no
edges (or a day with E = 0) still attends to itself. During training a fraction of edges is dropped
(edge dropout) before the layers, and attention coefficients are dropped inside them.
Peer inputs (`peer_inputs`): before the layers, each node's state gets a projection of its
neighbours' latest scaled inputs, averaged with the edges' correlations as weights,
`z_i + W_p Σ_j ρ_ij x_j(t) / Σ_j |ρ_ij|`. The encoder state z_j is trained in phases 0–1 to predict
stock j's own return and need not keep what its peers need from it (e.g. its residual return of
day t, which leads its cluster's next day); this path hands it over directly.
Fusion: `z + g ⊙ gat(z)`, `g = σ(W [z, gat(z)])`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATv2Conv

from atft_kedro.model.config import GATConfig


def drop_edges(
    edge_index: torch.Tensor,
    edge_attr: torch.Tensor,
    p: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep each edge independently with probability 1 − p."""
    if p <= 0.0 or edge_index.shape[1] == 0:
        return edge_index, edge_attr
    keep = torch.rand(edge_index.shape[1], generator=generator, device=edge_index.device) >= p
    return edge_index[:, keep], edge_attr[keep]


def peer_mean(x: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ_j w_ji x_j / Σ_j |w_ji| over the edges j → i; x [N, F], weight [E] → [N, F] (0 if none)."""
    src, dst = edge_index
    total = x.new_zeros(x.shape).index_add_(0, dst, weight.unsqueeze(-1) * x[src])
    norm = x.new_zeros(x.shape[0]).index_add_(0, dst, weight.abs())
    return total / norm.clamp_min(1e-6).unsqueeze(-1)


class GraphAttentionFusion(nn.Module):
    """z [N, H], edge_index [2, E], edge_attr [E, edge_dim], x_last [N, F] (the day's scaled
    inputs, used by `peer_inputs`) → (fused [N, H], attention per layer)."""

    def __init__(self, hidden: int, cfg: GATConfig, dropout: float, n_features: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.peer = nn.Linear(n_features, hidden) if cfg.peer_inputs else None
        self.layers = nn.ModuleList(
            GATv2Conv(
                hidden,
                hidden // cfg.heads,
                heads=cfg.heads,
                concat=True,
                edge_dim=cfg.edge_dim,
                dropout=cfg.attn_dropout,
                add_self_loops=True,
                fill_value=1.0,
            )
            for _ in range(cfg.n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(cfg.n_layers))
        self.dropout = nn.Dropout(dropout)
        self.gate = nn.Linear(2 * hidden, hidden)

    def forward(
        self,
        z: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        x_last: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        if edge_attr.shape[-1] != self.cfg.edge_dim:
            raise ValueError(
                f"batch edge_attr has {edge_attr.shape[-1]} columns, GATConfig.edge_dim is {self.cfg.edge_dim}"
            )
        if self.training:
            edge_index, edge_attr = drop_edges(edge_index, edge_attr, self.cfg.edge_dropout)
        edge_attr = edge_attr.to(z.dtype)
        h, attention = z, []
        if self.peer is not None:
            if x_last is None:
                raise ValueError("GATConfig.peer_inputs needs x_last, the day's inputs [N, F]")
            h = z + self.peer(peer_mean(x_last.to(z.dtype), edge_index, edge_attr[:, 0]))
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms, strict=True)):
            out, (att_index, alpha) = layer(h, edge_index, edge_attr, return_attention_weights=True)
            h = norm(h + self.dropout(out))
            if i < len(self.layers) - 1:
                h = F.elu(h)
            attention.append({"edge_index": att_index.detach(), "alpha": alpha.detach()})
        g = torch.sigmoid(self.gate(torch.cat([z, h], dim=-1)))
        return z + g * h, attention
