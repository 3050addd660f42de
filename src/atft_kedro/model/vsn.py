"""Static covariate encoder and variable selection network (TFT, Lim et al., 2021, section 4.2).

Variable selection with a *shared per-feature embedding*: scalar feature f becomes
`e_f = u_f · W_f + b_f ∈ R^H` (W, b are [F, H], i.e. 2FH parameters), instead of one GRN per
feature (the earlier model spent 80–95% of its parameters there). Selection weights
`v = softmax(GRN(u, c))` over features use the static context c; the selected input is
`GRN(Σ_f v_f e_f)`. Since the embedding is linear, `Σ_f v_f e_f = (v ⊙ u) W + v B` is computed as two
matrix products, never materialising [N, L, F, H].
"""

from __future__ import annotations

import torch
from torch import nn

from atft_kedro.model.grn import GRN


class StaticContext(nn.Module):
    """Embeddings of market and sector33 (index 0 = unknown) → (context c [N, H] for variable
    selection, initial LSTM state [N, H])."""

    def __init__(self, n_markets: int, n_sector33: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.market = nn.Embedding(n_markets + 1, hidden)
        self.sector33 = nn.Embedding(n_sector33 + 1, hidden)
        self.grn = GRN(hidden, hidden, hidden, dropout=dropout)
        self.state = nn.Linear(hidden, hidden)

    def forward(
        self, market: torch.Tensor, sector33: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_vocabularies(market, sector33)
        context = self.grn(self.market(market) + self.sector33(sector33))
        return context, self.state(context)

    def _check_vocabularies(self, market: torch.Tensor, sector33: torch.Tensor) -> None:
        """An index outside an embedding is a clear error (on CUDA it would be a device assert);
        one host sync for the four bounds."""
        if market.numel() == 0:
            return
        bounds = torch.stack([market.min(), market.max(), sector33.min(), sector33.max()]).tolist()
        for name, (low, high), size, setting in (
            ("market", bounds[:2], self.market.num_embeddings, "n_markets"),
            ("sector33", bounds[2:], self.sector33.num_embeddings, "n_sector33"),
        ):
            if low < 0 or high >= size:
                raise ValueError(
                    f"batch static[{name!r}] has index {high if high >= size else low}, outside "
                    f"the vocabulary 0..{size - 1} (ModelConfig.{setting} = {size - 1})"
                )


class VariableSelection(nn.Module):
    """u [N, L, F], context [N, H] → (selected [N, L, H], weights v [N, L, F])."""

    def __init__(self, n_inputs: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.embed_scale = nn.Parameter(torch.randn(n_inputs, hidden) / n_inputs**0.5)
        self.embed_bias = nn.Parameter(torch.zeros(n_inputs, hidden))
        self.selection = GRN(n_inputs, hidden, n_inputs, d_context=hidden, dropout=dropout)
        self.post = GRN(hidden, hidden, hidden, dropout=dropout)

    def forward(self, u: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.selection(u, context.unsqueeze(1)).softmax(dim=-1)  # [N, L, F]
        combined = (v * u) @ self.embed_scale + v @ self.embed_bias  # [N, L, H]
        return self.post(combined), v
