"""Temporal encoder (TFT, Lim et al., 2021, sections 4.4–4.5): LSTM → gated skip + LayerNorm →
interpretable multi-head attention → GRN, read out at the last day of the window.

Only the representation of day t (the last position) is used downstream, so attention is computed for
that single query over days t−L+1..t: causal by construction, and the position-wise layers after it
run on one step instead of L.
"""

from __future__ import annotations

import torch
from torch import nn

from atft_kedro.model.grn import GRN, GatedSkip


class InterpretableMultiHeadAttention(nn.Module):
    """Heads with their own query/key maps and one *shared* value map, averaged over heads, so the
    mean attention weight is the weight of each day in the output.

    query [N, Lq, H], keys [N, L, H], key_valid [N, L] → (out [N, Lq, H], weights [N, Lq, L]).
    """

    def __init__(self, hidden: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, hidden // n_heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, self.d_head)  # shared across heads
        self.out = nn.Linear(self.d_head, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, lq, _ = query.shape
        q = self.q(query).view(n, lq, self.n_heads, self.d_head).transpose(1, 2)  # [N, h, Lq, d]
        k = self.k(keys).view(n, -1, self.n_heads, self.d_head).transpose(1, 2)  # [N, h, L, d]
        scores = q @ k.transpose(-1, -2) / self.d_head**0.5  # [N, h, Lq, L]
        # A finite fill keeps a row with no valid day uniform instead of NaN.
        scores = scores.masked_fill(~key_valid[:, None, None, :], -1e9)
        weights = scores.softmax(dim=-1).mean(dim=1)  # [N, Lq, L]
        out = self.out(self.dropout(weights) @ self.v(keys))  # [N, Lq, H]
        return out, weights


class TemporalEncoder(nn.Module):
    """x [N, L, H] (selected inputs), mask [N, L], static state [N, H] → (z [N, H], attn [N, L])."""

    def __init__(self, hidden: int, n_layers: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.lstm_gate = GatedSkip(hidden, dropout)
        self.attention = InterpretableMultiHeadAttention(hidden, n_heads, dropout)
        self.attention_gate = GatedSkip(hidden, dropout)
        self.grn = GRN(hidden, hidden, hidden, dropout=dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, static_state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        state = static_state.unsqueeze(0).expand(self.n_layers, -1, -1).contiguous()
        if x.is_cuda:  # cuDNN wants one weight buffer; a copy (weight averaging) or .to() breaks it
            self.lstm.flatten_parameters()
        lstm_out, _ = self.lstm(x, (state, state))  # [N, L, H]
        phi = self.lstm_gate(lstm_out, skip=x)  # [N, L, H]
        last = phi[:, -1:]  # [N, 1, H], day t
        attended, weights = self.attention(last, phi, mask)
        delta = self.attention_gate(attended, skip=last)
        return self.grn(delta[:, 0]), weights[:, 0]
