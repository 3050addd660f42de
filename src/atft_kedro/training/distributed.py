"""Which training days each optimiser step uses, on one process or across DDP ranks.

One process (``Rank()``) steps once per training day: the epoch's days (all, or
``max_train_days_per_epoch`` drawn by (seed, epoch): ``epoch_day_subset``) in the dataset's shuffled
order. Under ``torchrun --nproc_per_node=N`` (gloo on CPU, NCCL on GPU) one step consumes N days:
every rank draws the same permutation of the epoch's days from (seed, epoch) and takes the days
``perm[rank::N]`` (``shard_days``), truncated so every rank takes the same number of steps. DDP
averages the N day gradients (all-reduce), so every rank applies the same update and holds the same
weights. A day whose loss is non-finite on any rank skips the step on all of them (``all_finite``).
Augmentation draws from a generator seeded by (seed, epoch, day) (``day_generator``), so a day gets
the same noise on any rank.

The single-process twin of an N-rank job averages the gradients of the same N days per step
(``all_shards``): the batch composition DDP computes. The training loop
(``training.trainer.train_phase``) runs all three; the twin is what a DDP run is tested against, and
what a one-process resume from an N-rank ``last.pt`` continues with.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from atft_kedro.errors import ParameterError

log = logging.getLogger(__name__)

_SUBSET_STREAM = 7  # keeps the subset's random stream apart from the dataset's shuffling stream


def epoch_day_subset(n_days: int, max_days: int | None, seed: int, epoch: int) -> np.ndarray:
    """Sorted positions (of n_days training days) trained in `epoch`: all, or `max_days` drawn
    uniformly without replacement by a generator seeded with (seed, epoch) only."""
    if max_days is None or max_days >= n_days:
        return np.arange(n_days)
    rng = np.random.default_rng([seed, epoch, _SUBSET_STREAM])
    return np.sort(rng.choice(n_days, size=max_days, replace=False))


def resolve_device(name: str) -> torch.device:
    """`auto` → cuda if available, else cpu; `cuda` without a GPU is a one-line error. Under
    torchrun on CUDA, the rank's own GPU (``init_from_env`` made it the current device)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            "training.device is 'cuda' but no CUDA device is available (use auto or cpu)"
        )
    if name not in ("cpu", "cuda"):
        raise ParameterError(f"training.device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


@dataclass(frozen=True)
class Rank:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


ONE_PROCESS = Rank()


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
    if resolve_device(device).type == "cuda":
        torch.cuda.set_device(rank.local_rank)  # before resolving: the rank's own GPU
    target = resolve_device(device)
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


def step_days(
    n_days: int, rank: Rank, accumulate: int, seed: int, epoch: int, max_days: int | None
) -> list[list[int]]:
    """Day indices of this process per step: this rank's shard of a DDP job, or with
    ``accumulate`` > 1 (one process), every rank's days of an ``accumulate``-rank job."""
    if accumulate > 1:
        return all_shards(n_days, accumulate, seed, epoch, max_days)
    return shard_days(n_days, rank, seed, epoch, max_days)


def day_generator(
    seed: int, epoch: int, day: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """The augmentation generator of one training day in one epoch (same on every rank)."""
    key = np.random.SeedSequence([int(seed), int(epoch), int(day)]).generate_state(1, np.uint64)
    return torch.Generator(device=device).manual_seed(int(key[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def barrier() -> None:
    """Wait for every rank (no-op on one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_finite(flag: bool, device: torch.device) -> bool:
    """True when `flag` holds on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=device)
    dist.all_reduce(t)
    return float(t) == 0.0


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
