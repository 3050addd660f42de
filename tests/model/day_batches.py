"""Small random day batches shaped like the loader's (docs/contracts.md, "Day batch")."""

from __future__ import annotations

import datetime as dt

import torch

HORIZONS = (1, 5)


def random_graph(
    n: int, per_node: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed random graph without self-loops: edge_index [2, E], edge_attr [E, 3]."""
    if n < 2 or per_node == 0:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3)
    src = torch.arange(n).repeat_interleave(per_node)
    dst = (src + torch.randint(1, n, (src.numel(),), generator=generator)) % n
    attr = torch.stack(
        [
            torch.rand(src.numel(), generator=generator) * 2 - 1,
            torch.randint(0, 2, (src.numel(),), generator=generator).float(),
            torch.randint(0, 2, (src.numel(),), generator=generator).float(),
        ],
        dim=1,
    )
    return torch.stack([src, dst]), attr


def day_batch(
    n: int = 6, length: int = 12, n_features: int = 4, per_node: int = 2, seed: int = 0
) -> dict:
    g = torch.Generator().manual_seed(seed)
    edge_index, edge_attr = random_graph(n, per_node, g)
    y = {h: torch.randn(n, generator=g) for h in HORIZONS}
    return {
        "x": torch.randn(n, length, n_features, generator=g),
        "mask": torch.ones(n, length, dtype=torch.bool),
        "y": y,
        "y_mask": {h: torch.isfinite(v) for h, v in y.items()},
        "static": {
            "market": torch.randint(0, 4, (n,), generator=g),
            "sector33": torch.randint(0, 34, (n,), generator=g),
        },
        "codes": [f"{1000 + i}0" for i in range(n)],
        "date": dt.date(2024, 1, 4),
        "edge_index": edge_index,
        "edge_attr": edge_attr,
    }
