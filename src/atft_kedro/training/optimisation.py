"""What turns gradients into the weights a phase keeps: AdamW parameter groups, the warm-up +
cosine schedule, the weight average (SWA or a debiased EMA) and early stopping.

Everything counted in trading days is turned into optimiser steps by the phase's ``StepPlan``: the
warm-up (``schedule.warmup_days``) and the EMA's decay (``ema_decay`` per day, ``ema_decay ** D``
per step of D days), so both span the same days whatever the ranks, accumulation and days per
forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from atft_kedro.training.config import OptimizerConfig, ScheduleConfig
from atft_kedro.training.phases import AveragingConfig, PhaseConfig
from atft_kedro.training.steps import ONE_DAY, StepPlan


def parameter_groups(
    model: nn.Module, lr: float, multipliers: dict[str, float], weight_decay: float
) -> list[dict[str, Any]]:
    """AdamW groups: one per trainable sub-module (lr × its multiplier); biases and norms undecayed."""
    children = dict(model.named_children())
    unknown = sorted(set(multipliers) - set(children))
    if unknown:
        raise ValueError(
            f"lr_multipliers names {unknown} are not sub-modules (have {sorted(children)})"
        )
    groups = []
    for name, module in children.items():
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            continue
        scale = float(multipliers.get(name, 1.0))
        decay = [p for p in params if p.ndim >= 2]
        plain = [p for p in params if p.ndim < 2]
        for subset, wd in ((decay, weight_decay), (plain, 0.0)):
            if subset:
                groups.append(
                    {"params": subset, "lr": lr * scale, "weight_decay": wd, "name": name}
                )
    if not groups:
        raise ValueError(
            "no trainable parameters in this phase: check `trainable` and the switches"
        )
    return groups


def adamw(model: nn.Module, spec: PhaseConfig, cfg: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over the phase's parameter groups at its peak learning rate."""
    groups = parameter_groups(model, spec.lr, spec.lr_multipliers, cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=spec.lr, betas=cfg.betas)


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """lr multiplier at step s: linear warm-up to 1, then cosine down to `min_ratio` at the end."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def lr_schedule(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps: StepPlan, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up over ``cfg.warmup_days`` trading days (in steps of ``steps.days`` days), then
    cosine decay to ``cfg.min_lr_ratio`` at ``total_steps``."""
    factor = warmup_cosine(steps.steps(cfg.warmup_days), total_steps, cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


Tensors = list[torch.Tensor] | tuple[torch.Tensor, ...]


def debiased_ema(decay: float) -> Callable[[Tensors, Tensors, torch.Tensor | int], None]:
    """EMA update with Adam's bias correction: after t updates the average is
    Σ_s (1 − β) β^(t−s) θ_s / (1 − β^t), so the weights of the first step (near the random
    initialisation) keep weight ≈ (1 − β) instead of β^(t−1). With β = 0.998 and 450 steps a plain
    EMA still held 41% of the first step's weights."""

    @torch.no_grad()
    def update(averaged: Tensors, current: Tensors, num_averaged: torch.Tensor | int) -> None:
        t = float(num_averaged) + 1.0  # this update's index; AveragedModel copies at t = 1
        torch._foreach_lerp_(averaged, current, (1.0 - decay) / (1.0 - decay**t))

    return update


def weight_average(
    model: nn.Module, averaging: AveragingConfig, steps: StepPlan = ONE_DAY
) -> AveragedModel | None:
    """The running average of `model`'s weights (SWA: equal weights; EMA), or None.

    The EMA decay is per training day: a step of D days (``steps.days``) decays by
    ``ema_decay ** D``, so the average spans the same days whatever the days per step.
    """
    if not averaging.enabled:
        return None
    ema = averaging.kind == "ema"
    decay = steps.decay(averaging.ema_decay)
    return AveragedModel(model, multi_avg_fn=debiased_ema(decay) if ema else None)


class EarlyStopping:
    """Stop after `patience` epochs without the metric exceeding its best by `min_delta`."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def step(self, value: float | None, epoch: int) -> bool:
        """Record an epoch's metric (None counts as −∞); True when it is the new best."""
        value = -math.inf if value is None else value
        if self.best_epoch < 0 or value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
