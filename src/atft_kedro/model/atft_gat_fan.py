"""ATFT-GAT-FAN: adaptive normalisation → variable selection → temporal encoder → graph → heads.

Per day batch of N stocks (docs/design.md, Model; a multi-day batch stacks D days' stocks, their graphs
block-diagonal, and every layer works per stock or per edge, so days never mix):

    x [N, L, F] ─FAN─► [N, L, F|2F] ─SAN─► ─VSN(static c)─► [N, L, H] ─encoder─► z [N, H]
      ─GAT (+ peers' x_t) + gated fusion─► [N, H] ─heads─► {h: quantiles [N, Q]}, point = median

Every sub-module always exists, so checkpoints load across phases; the switches `use_fan`, `use_san`,
`use_gat` decide which ones the forward pass runs. A switched-off module is skipped (the identity), so
its parameters receive no gradient.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from atft_kedro.model.config import ModelConfig
from atft_kedro.model.encoder import TemporalEncoder
from atft_kedro.model.fan import FAN
from atft_kedro.model.gat import GraphAttentionFusion
from atft_kedro.model.heads import QuantileHeads
from atft_kedro.model.san import SAN
from atft_kedro.model.segments import Segments
from atft_kedro.model.vsn import StaticContext, VariableSelection


class ATFTGATFAN(nn.Module):
    """The model. Sub-modules (named for freezing by the trainer): fan, san, static, vsn, encoder,
    gat, heads."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.n_features is None:
            raise ValueError("ModelConfig.n_features is not set: use cfg.with_inputs(F)")
        self.cfg = dataclasses.replace(cfg)  # set_modules changes switches on our copy only
        h = cfg.hidden
        self.fan = FAN(cfg.n_features, cfg.fan)
        self.san = SAN(self.fan.out_features, cfg.san)
        self.static = StaticContext(cfg.n_markets, cfg.n_sector33, h, cfg.dropout)
        self.vsn = VariableSelection(cfg.vsn_input_width, h, cfg.dropout)
        self.encoder = TemporalEncoder(h, cfg.lstm_layers, cfg.attn_heads, cfg.dropout)
        self.gat = GraphAttentionFusion(h, cfg.gat, cfg.dropout, cfg.n_features)
        self.heads = QuantileHeads(
            h, cfg.horizons, cfg.quantiles, cfg.dropout, cfg.n_features if cfg.linear_skip else 0
        )

    def set_modules(
        self, use_fan: bool | None = None, use_san: bool | None = None, use_gat: bool | None = None
    ) -> None:
        """Switch FAN, SAN and GAT on or off for subsequent forward passes (None: unchanged)."""
        for name, value in (("use_fan", use_fan), ("use_san", use_san), ("use_gat", use_gat)):
            if value is not None:
                setattr(self.cfg, name, bool(value))

    def forward(self, batch: dict[str, Any], return_interpretation: bool = False) -> dict[str, Any]:
        x, mask = batch["x"], batch["mask"].bool()
        inputs = x
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_features:
            raise ValueError(
                f"ATFTGATFAN: batch x has shape {tuple(x.shape)} ({x.shape[-1]} features), "
                f"but ModelConfig.n_features is {self.cfg.n_features}; expected [N, L, {self.cfg.n_features}]"
            )
        aux = x.new_zeros(())
        info: dict[str, Any] = {}

        if self.cfg.use_fan:
            x, fan_aux, fan_info = self.fan(x, mask, Segments.of(batch))
            aux, info = aux + fan_aux, info | fan_info
        else:
            x = self.fan.identity(x)
        if self.cfg.use_san:
            x, san_aux, san_info = self.san(x, mask)
            aux, info = aux + san_aux, info | san_info

        static = batch["static"]
        context, state = self.static(static["market"], static["sector33"])  # [N, H] each
        selected, vsn_weights = self.vsn(x, context)  # [N, L, H], [N, L, F']
        z, temporal_attention = self.encoder(selected, mask, state)  # [N, H]

        # the day's scaled inputs [N, F] for the peer path and the linear skip (non-finite: 0)
        x_last = torch.nan_to_num(inputs[:, -1], nan=0.0, posinf=0.0, neginf=0.0)
        if self.cfg.use_gat:
            z, gat_attention = self.gat(z, batch["edge_index"], batch["edge_attr"], x_last)
            info["gat_attention"] = gat_attention

        quantiles = self.heads(z, x_last)
        m = self.heads.median_index
        out: dict[str, Any] = {
            "quantiles": quantiles,
            "point": {h: q[:, m] for h, q in quantiles.items()},
            "aux_loss": aux,
        }
        if return_interpretation:
            valid = mask.unsqueeze(-1).to(vsn_weights.dtype)
            info["vsn_weights"] = (
                (vsn_weights * valid).sum(1) / valid.sum(1).clamp_min(1.0)
            ).detach()
            info["temporal_attention"] = temporal_attention.detach()  # [N, L]
            out["interpretation"] = info
        return out
