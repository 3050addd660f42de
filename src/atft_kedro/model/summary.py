"""Parameter counts per sub-module, for the README and the parameter-budget check."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table(model: nn.Module) -> dict[str, int]:
    """Parameters of each top-level sub-module (in registration order) plus "total"."""
    table = {name: count_parameters(child) for name, child in model.named_children()}
    table["total"] = count_parameters(model)
    return table
