"""What a trained ATFT-GAT-FAN attends to, averaged over the days it predicts.

``InterpretationCollector`` consumes ``(batch, model(batch, return_interpretation=True))`` pairs
and summarises, over stocks and days:

* variable selection: the mean softmax weight of each model input (features then masks);
* FAN: the mean mixture weight α [F, W] (or [F, 1+W] with the raw pass-through first) of each
  input over its normalisation candidates (multi-window mode);
* SAN: the learned slice weights π [K], and per input the effective weight of each slice
  π_k·|γ_k,f| normalised over k (how much each part of the window shapes that input);
* GAT: attention coefficients (mean over heads and layers, self-loops left out) on edges between
  stocks of the same sector33 and on all other edges, raw and relative to uniform attention
  (α × in-degree of the receiving stock: 1 = uniform, > 1 = attended more than average).

``group_rows`` averages per-input rows into feature families for the report's heatmaps.
The result is JSON-ready (lists and floats only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from atft_kedro.features.registry import FEATURES

if TYPE_CHECKING:
    from atft_kedro.model.atft_gat_fan import ATFTGATFAN

MASK_GROUP = "validity masks"


def feature_groups(input_names: Sequence[str]) -> list[str]:
    """The family of each model input (registry family; masks → "validity masks"; else "other")."""
    family = {spec.name: spec.family for spec in FEATURES}
    return [
        MASK_GROUP
        if name.startswith("is_") and name.endswith("_valid")
        else family.get(name, "other")
        for name in input_names
    ]


def group_rows(rows: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean of ``rows [F, K]`` within each group, groups in first-seen order → (names, [G, K])."""
    rows = np.asarray(rows, dtype=float)
    names = list(dict.fromkeys(groups))
    index = np.array([names.index(g) for g in groups])
    sums = np.zeros((len(names), rows.shape[1]))
    np.add.at(sums, index, rows)
    return names, sums / np.bincount(index, minlength=len(names))[:, None]


class InterpretationCollector:
    """Running means of the model's interpretation outputs over day batches.

    Args:
        input_names: the model inputs (F), in model order.
        max_samples: attention coefficients kept per edge type for the distribution plot.
        seed: seeds the subsample of attention coefficients.
    """

    def __init__(self, input_names: Sequence[str], max_samples: int = 5000, seed: int = 0) -> None:
        self.input_names = list(input_names)
        self.max_samples, self.seed = int(max_samples), int(seed)
        self.days = 0
        self._vsn = np.zeros(len(self.input_names))
        self._vsn_days = 0
        self._fan: np.ndarray | None = None
        self._fan_days = 0
        self._gat: dict[str, list[np.ndarray]] = {"same_sector": [], "other": []}
        self._gat_relative: dict[str, list[np.ndarray]] = {"same_sector": [], "other": []}

    def update(self, batch: Mapping[str, Any], out: Mapping[str, Any]) -> None:
        """Add one day: ``out = model(batch, return_interpretation=True)``."""
        info = out["interpretation"]
        n = len(batch["codes"])
        if n == 0:
            return
        self.days += 1
        vsn = info["vsn_weights"].float().mean(0).cpu().numpy()  # [F'] mean over stocks
        if vsn.size == self._vsn.size:  # Fourier FAN doubles the width: no per-input reading
            self._vsn += vsn
            self._vsn_days += 1
        if "fan_window_weights" in info:
            fan = info["fan_window_weights"].float().cpu().numpy()  # [F, W]
            self._fan = fan if self._fan is None else self._fan + fan
            self._fan_days += 1
        if "gat_attention" in info:
            self._add_attention(info["gat_attention"], batch["static"]["sector33"].cpu(), n)

    def _add_attention(
        self, layers: Sequence[Mapping[str, torch.Tensor]], sector: torch.Tensor, n: int
    ) -> None:
        for layer in layers:
            src, dst = layer["edge_index"].cpu()
            alpha = layer["alpha"].float().cpu()
            alpha = alpha.mean(-1) if alpha.dim() == 2 else alpha  # mean over heads
            in_degree = torch.bincount(dst, minlength=n).float()  # includes the self-loop
            relative = alpha * in_degree[dst]
            edge = src != dst
            same = edge & (sector[src] == sector[dst]) & (sector[src] > 0)
            for key, keep in (("same_sector", same), ("other", edge & ~same)):
                self._gat[key].append(alpha[keep].numpy())
                self._gat_relative[key].append(relative[keep].numpy())

    def result(self, model: ATFTGATFAN | None = None) -> dict[str, Any]:
        """JSON-ready summary; ``model`` supplies SAN's learned γ and π (skipped when None)."""
        groups = feature_groups(self.input_names)
        out: dict[str, Any] = {"days": self.days, "inputs": self.input_names, "groups": groups}
        if self._vsn_days:
            vsn = self._vsn / self._vsn_days
            out["vsn_importance"] = dict(zip(self.input_names, vsn.tolist(), strict=True))
        if self._fan is not None and self._fan.shape[0] == len(self.input_names):
            width = self._fan.shape[1]
            windows = [str(w) for w in model.cfg.fan.windows] if model is not None else []
            if len(windows) == width - 1:  # FAN's pass-through candidate comes first
                windows = ["raw", *windows]
            if len(windows) != width:
                windows = [str(k) for k in range(width)]
            out["fan"] = {"windows": windows, "weights": (self._fan / self._fan_days).tolist()}
        san = getattr(model, "san", None)
        if model is not None and san is not None and getattr(model.cfg, "use_san", False):
            pi = san.slice_logits.detach().float().softmax(0).cpu().numpy()  # [K]
            gamma = san.gamma.detach().float().abs().cpu().numpy()  # [K, F]
            effective = (pi[:, None] * gamma).T  # [F, K]
            effective /= np.clip(effective.sum(1, keepdims=True), 1e-12, None)
            if effective.shape[0] == len(self.input_names):
                out["san"] = {
                    "slice_weights": pi.tolist(),
                    "feature_slice_weights": effective.tolist(),
                }
        if any(part.size for parts in self._gat.values() for part in parts):
            out["gat"] = self._attention_summary()
        return out

    def _attention_summary(self) -> dict[str, Any]:
        rng = np.random.default_rng(self.seed)
        summary = {}
        for key in ("same_sector", "other"):
            alpha = np.concatenate(self._gat[key]) if self._gat[key] else np.empty(0)
            relative = (
                np.concatenate(self._gat_relative[key]) if self._gat_relative[key] else np.empty(0)
            )
            sample = (
                np.sort(rng.choice(alpha.size, self.max_samples, replace=False))
                if alpha.size > self.max_samples
                else np.arange(alpha.size)
            )
            summary[key] = {
                "edges": int(alpha.size),
                "mean": float(alpha.mean()) if alpha.size else None,
                "mean_relative_to_uniform": float(relative.mean()) if relative.size else None,
                "sample": alpha[sample].tolist(),
            }
        return summary
