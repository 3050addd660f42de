"""Data-parallel training of one phase with PyTorch DistributedDataParallel (DDP).

Run under `torchrun --nproc_per_node=N` (one process per rank; gloo on CPU, NCCL on GPU). One
optimiser step consumes N trading days: each epoch every rank takes the same subset of training
days as the single-process loop (`max_train_days_per_epoch`, drawn by (seed, epoch)), draws the
same permutation of it and takes the days `perm[rank::N]`, truncated so every rank takes the same
number of steps; so the ranks see disjoint days. DDP averages the gradients of
the N day losses (all-reduce) before the step, so every rank applies the same update and holds the
same weights. A day whose loss is non-finite on any rank skips the step on all ranks (the flag is
all-reduced). Phase 4's augmentation draws from a generator seeded by (seed, epoch, day), so a day
gets the same noise on any rank; its weight average (SWA/EMA) is updated after every step from the
synchronised weights, so it is identical on every rank too, and validation and `best` use it as in
the single-process loop. Validation runs on every rank over all validation days (identical
results); only rank 0 saves checkpoints.

`train_phase_accumulated` is the single-process twin: it averages the gradients of the same N days
per step, which is the batch composition DDP computes, and is what the DDP run is checked against.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.checkpoints import plain
from atft_kedro.training.phases import PhaseConfig, parameter_groups
from atft_kedro.training.trainer import (
    EarlyStopping,
    LoopConfig,
    epoch_day_subset,
    resolve_device,
    warmup_cosine,
    weight_average,
)
from atft_kedro.training.validation import evaluate, to_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rank:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str = "auto") -> tuple[Rank, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    Backend: NCCL when training on CUDA (one GPU per local rank), gloo on CPU. Without torchrun's
    variables this is a single process (rank 0 of 1) and no group is created.
    """
    rank = Rank(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )
    target = resolve_device(device)
    if target.type == "cuda":
        torch.cuda.set_device(rank.local_rank)
        target = torch.device("cuda", rank.local_rank)
    if rank.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return rank, target


def shard_days(
    n_days: int, rank: Rank, seed: int, epoch: int, max_days: int | None = None
) -> list[list[int]]:
    """Day indices per optimiser step for this rank: step s uses day `steps[s]`.

    The epoch's days are the single-process loop's (`epoch_day_subset`: all, or `max_days` drawn
    by (seed, epoch)). All ranks draw the same permutation of them from (seed, epoch); rank r takes
    positions r, r+N, r+2N, … of it, the first ⌊days / N⌋ of them (equal step counts on every
    rank; the few days left over change from epoch to epoch). Returned as [[day], …] so the
    single-process twin can use `all_shards` with the same shape.
    """
    days = epoch_day_subset(n_days, max_days, seed, epoch)
    per_rank = len(days) // rank.world_size
    perm = days[np.random.default_rng([int(seed), int(epoch)]).permutation(len(days))]
    mine = perm[rank.rank :: rank.world_size][:per_rank]
    return [[int(d)] for d in mine]


def all_shards(
    n_days: int, world_size: int, seed: int, epoch: int, max_days: int | None = None
) -> list[list[int]]:
    """The days of every rank per step ([step][rank]): what one DDP step averages over."""
    shards = [
        shard_days(n_days, Rank(r, world_size), seed, epoch, max_days) for r in range(world_size)
    ]
    return [[shards[r][s][0] for r in range(world_size)] for s in range(len(shards[0]))]


def day_generator(
    seed: int, epoch: int, day: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """The augmentation generator of one training day in one epoch (same on every rank)."""
    key = np.random.SeedSequence([int(seed), int(epoch), int(day)]).generate_state(1, np.uint64)
    return torch.Generator(device=device).manual_seed(int(key[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def _all_finite(flag: bool, device: torch.device) -> bool:
    """True when `flag` holds on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=device)
    dist.all_reduce(t)
    return float(t) == 0.0


@dataclass
class DDPResult:
    history: list[dict[str, Any]]  # per epoch: train loss, val metrics
    best_epoch: int
    best_value: float | None


def _train(
    model: nn.Module,
    loss_fn: nn.Module,
    phase: PhaseConfig,
    loop: LoopConfig,
    train_data: InMemoryDayDataset,
    val_data: InMemoryDayDataset,
    steps_of_epoch: Callable[[int], list[list[int]]],
    device: torch.device,
    wrap: Callable[[nn.Module], nn.Module],
    scale: float,
    save: Callable[[str, dict[str, Any]], Any] | None,
    seed: int,
) -> DDPResult:
    """The loop shared by DDP and its twin: each step averages the loss gradients of its days."""
    model.to(device)
    loss_fn.to(device)
    horizons = list(model.cfg.horizons)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, phase.lr, phase.lr_multipliers, loop.weight_decay),
        lr=phase.lr,
        betas=loop.betas,
    )
    steps_per_epoch = max(1, len(steps_of_epoch(0)))  # every epoch has the same number
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(loop.warmup_steps, phase.epochs * steps_per_epoch, loop.min_lr_ratio),
    )
    trained = wrap(model)
    averaged = weight_average(model, phase)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    stopper = EarlyStopping(phase.patience, loop.min_delta)
    history: list[dict[str, Any]] = []
    for epoch in range(phase.epochs):
        if stopper.should_stop:
            break
        model.train()
        losses, skipped = [], 0
        for days in steps_of_epoch(epoch):
            optimizer.zero_grad(set_to_none=True)
            finite, total = True, 0.0
            for day in days:
                batch = to_device(train_data[day], device)
                if phase.augmentation.enabled:
                    generator = day_generator(seed, epoch, day, device)
                    batch = augment_batch(batch, phase.augmentation, generator)
                loss, _ = loss_fn(trained(batch), batch)
                finite &= bool(torch.isfinite(loss))
                if finite:
                    (loss * scale).backward()
                    total += float(loss.detach()) * scale
            if finite:
                norm = torch.nn.utils.clip_grad_norm_(params, loop.grad_clip)
                finite = bool(torch.isfinite(norm))
            if not _all_finite(finite, device):
                skipped += 1
                continue
            optimizer.step()
            scheduler.step()
            if averaged is not None and epoch >= phase.averaging.start_epoch:
                averaged.update_parameters(model)
            losses.append(total)
        use_average = averaged is not None and int(averaged.n_averaged) > 0
        judged = averaged.module if use_average else model
        val = evaluate(
            judged, loss_fn, (val_data[i] for i in range(len(val_data))), horizons, device,
            loop.min_stocks_per_day,
        )  # fmt: skip
        score = val[f"val_rank_ic_{loop.early_stop_horizon}d"]
        improved = stopper.step(score, epoch)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else None,  # this rank's days
            "nonfinite_skips": skipped,
            **val,
            "val_mean_rank_ic": score,
            "improved": improved,
            "averaged_weights": use_average,
            "train_days": len(losses),
        }
        history.append(metrics)
        if save is not None:
            state = {
                "model_config": plain(dataclasses.asdict(model.cfg)),
                "phase": phase.phase,
                "epoch": epoch + 1,
                "history": history,
                "seed": seed,
            }
            if improved:
                save("best", {**state, "model_state": judged.state_dict()})
            save(
                "last",
                {
                    **state,
                    "model_state": model.state_dict(),
                    "optimizer_state": optimizer.state_dict(),
                    "averaged_state": averaged.state_dict() if averaged is not None else None,
                },
            )
    best = stopper.best if np.isfinite(stopper.best) else None
    return DDPResult(history, stopper.best_epoch + 1, best)


def train_phase_ddp(
    model: nn.Module,
    loss_fn: nn.Module,
    phase: PhaseConfig,
    loop: LoopConfig,
    train_data: InMemoryDayDataset,
    val_data: InMemoryDayDataset,
    rank: Rank,
    device: torch.device,
    *,
    seed: int,
    save: Callable[[str, dict[str, Any]], Any] | None = None,
) -> DDPResult:
    """Train one phase (model already set up by `apply_phase`) as rank `rank` of a DDP job.

    Needs an initialised process group when world_size > 1 (see `init_from_env`). `save(kind,
    state)` is called on rank 0 only. The in-memory dataset is required: ranks index days directly.
    """
    if not isinstance(train_data, InMemoryDayDataset):
        raise TypeError("distributed training needs training.loader.implementation: in_memory")

    def wrap(m: nn.Module) -> nn.Module:
        if rank.world_size == 1:
            return m
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(m, device_ids=ids)

    return _train(
        model, loss_fn, phase, loop, train_data, val_data,
        lambda e: shard_days(len(train_data), rank, seed, e, loop.max_train_days_per_epoch),
        device, wrap, 1.0,
        save if rank.is_main else None, seed,
    )  # fmt: skip


def train_phase_accumulated(
    model: nn.Module,
    loss_fn: nn.Module,
    phase: PhaseConfig,
    loop: LoopConfig,
    train_data: InMemoryDayDataset,
    val_data: InMemoryDayDataset,
    world_size: int,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    save: Callable[[str, dict[str, Any]], Any] | None = None,
) -> DDPResult:
    """One process, the same days per step as a `world_size`-rank DDP run, gradients averaged."""
    return _train(
        model, loss_fn, phase, loop, train_data, val_data,
        lambda e: all_shards(len(train_data), world_size, seed, e, loop.max_train_days_per_epoch),
        torch.device(device),
        lambda m: m, 1.0 / world_size, save, seed,
    )  # fmt: skip


def weights_digest(model: nn.Module) -> torch.Tensor:
    """All parameters flattened into one float64 vector (to compare ranks' weights)."""
    return torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])


def gather_digests(model: nn.Module) -> Sequence[torch.Tensor]:
    """Every rank's `weights_digest` (on every rank); a single process returns its own."""
    mine = weights_digest(model)
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    out = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(out, mine)
    return out
