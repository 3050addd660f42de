"""How many trading days one optimiser step sees, and which ones: the step plan.

Three things multiply into the days of one step, and ``StepPlan`` is the one value that holds them:

* ``rank.world_size``: a DDP job's ranks, each training its own group of days (DDP averages the
  ranks' gradients);
* ``accumulate``: on one process, groups whose gradients are averaged in place: the twin of an
  ``accumulate``-rank job (a one-process resume of an N-rank ``last`` checkpoint uses N);
* ``days_per_pass`` (``training.days_per_step``): the days of one group, batched in one forward
  pass (block-diagonal graph; each day's loss stays per day).

``StepPlan.days`` = ranks × accumulate × days per pass. Whatever is counted in trading days reads
it: the warm-up (``schedule.warmup_days``, turned into steps), the weight average's decay
(``ema_decay ** days``) and the grouping of an epoch's days into steps (``epoch_steps``).

The forward and backward passes of one step's groups are here too (``forward_backward``): what
the training loop's ``_train_step`` clips and applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from atft_kedro.loader.datasets import DayDataset, day_loader
from atft_kedro.loader.day_batch import DayBatch, collate_days
from atft_kedro.loader.day_table import to_date
from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.distributed import (
    ONE_PROCESS,
    Rank,
    day_generator,
    epoch_day_subset,
    step_days,
)
from atft_kedro.training.validation import to_device

if TYPE_CHECKING:
    from atft_kedro.training.trainer import PhaseRun

#: the days of one step: (day index, or None in the dataset's own order; day batch)
Step = list[tuple[int | None, dict[str, Any]]]


@dataclass(frozen=True)
class StepPlan:
    """The days of one optimiser step: ``groups`` groups of ``days_per_pass`` days each."""

    rank: Rank = ONE_PROCESS  # this process's place in a DDP job (one group per rank)
    accumulate: int = 1  # on one process: groups per step, gradients averaged in place
    days_per_pass: int = 1  # days of a group, batched in one forward pass

    @property
    def groups(self) -> int:
        """Groups per step of the whole job (the ``world_size`` checkpoints record)."""
        return self.rank.world_size * self.accumulate

    @property
    def days(self) -> int:
        """Trading days per optimiser step of the whole job."""
        return self.groups * self.days_per_pass

    @property
    def indexed(self) -> bool:
        """Days are drawn by index (shards of a job), not in the dataset's shuffled order; this
        needs the in-memory dataset."""
        return self.groups > 1

    def steps(self, days: int) -> int:
        """Optimiser steps that cover ``days`` trading days (rounded up)."""
        return -(-int(days) // self.days)

    def decay(self, per_day: float) -> float:
        """A per-day decay over one step: ``per_day ** days``."""
        return per_day**self.days

    def steps_per_epoch(self, n_days: int, max_days: int | None, seed: int) -> int:
        """Optimiser steps in an epoch of ``n_days`` training days (``max_days`` drawn)."""
        if self.indexed:
            day_steps = len(step_days(n_days, self.rank, self.accumulate, seed, 0, max_days))
        else:
            day_steps = min(n_days, max_days or n_days)
        return -(-day_steps // self.days_per_pass)

    def split(self, step: Step) -> list[Step]:
        """A step's days as its groups (one forward pass each): group r holds the days of rank r
        of the job the step stands for."""
        return [step[r :: self.accumulate] for r in range(self.accumulate)]

    def epoch_steps(
        self, data: DayDataset, max_days: int | None, seed: int, epoch: int, num_workers: int = 0
    ) -> tuple[Iterable[Step], int]:
        """The steps of ``epoch`` and their number: each takes ``days_per_pass`` consecutive
        one-group steps (the last may take fewer)."""
        if not self.indexed:
            data.set_epoch(epoch)
            batches, n = epoch_loader(data, max_days, epoch, num_workers)
            steps: Iterable[Step] = _one_day_steps(batches)
        else:
            days = step_days(len(data), self.rank, self.accumulate, seed, epoch, max_days)
            # the loader's DayBatch (a TypedDict) is a plain dict[str, Any] to the training code
            steps = ([(d, cast(dict[str, Any], data[d])) for d in step] for step in days)
            n = len(days)
        if self.days_per_pass == 1:
            return steps, n
        chunks = _chunks(steps, self.days_per_pass)
        return (sum(chunk, []) for chunk in chunks), -(-n // self.days_per_pass)


#: one process, one day per step (the default)
ONE_DAY = StepPlan()


def epoch_loader(
    data: DayDataset, max_days: int | None, epoch: int, num_workers: int = 0
) -> tuple[Iterable[dict[str, Any]], int]:
    """The training batches of `epoch` (after `data.set_epoch(epoch)`) and their number: all the
    days, or ``max_days`` drawn by (seed, epoch).

    In memory, unselected days are never built; streaming reads every block (the unit of I/O) and
    drops the unselected days before they reach the model.
    """
    seed = int(data.seed)
    if isinstance(data, InMemoryDayDataset):
        keep = set(epoch_day_subset(len(data), max_days, seed, epoch).tolist())
        order = [i for i in data.order() if i in keep]
        return day_loader(data, num_workers, sampler=order), len(order)
    subset = epoch_day_subset(len(data), max_days, seed, epoch)
    if subset.size == len(data):
        return day_loader(data, num_workers), len(data)
    dates = {to_date(int(d)) for d in data.table.calendar[data.days[subset]]}
    batches = (b for b in day_loader(data, num_workers) if b["date"] in dates)
    return batches, int(subset.size)


def _one_day_steps(batches: Iterable[dict[str, Any]]) -> Iterator[Step]:
    """[(None, batch)] per batch, iterating ``batches`` only when the first step is taken (a
    DataLoader draws its base seed from the global RNG when iterated)."""
    for batch in batches:
        yield [(None, batch)]


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter), drawn lazily: a DataLoader
    draws its base seed from the global RNG only when the first step is taken."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def forward_backward(run: PhaseRun, step: Step, epoch: int) -> tuple[Any, dict, int, int]:
    """Forward and backward of each group of the step's days (one pass per group, its loss over
    the number of groups); (finite flag or None, loss parts summed over days, samples, days)."""
    groups = run.steps.split(step)
    finite, samples, days = None, 0, 0
    sums: dict[str, torch.Tensor] = {}
    for group in groups:
        batches = []
        for day, batch in group:
            if len(batch["codes"]) == 0:
                continue
            generator = day_generator(run.seed, epoch, day, run.device) if day is not None else None
            batches.append(
                augment_batch(to_device(batch, run.device), run.spec.augmentation, generator)
            )
        if not batches:
            continue
        # the loader's DayBatch (a TypedDict) is a plain dict[str, Any] to the training code
        batch = cast(dict[str, Any], collate_days(cast(list[DayBatch], batches)))
        with run.autocast():  # the forward pass only: the loss runs in float32
            output = run.trained(batch)
        loss, parts = run.loss_fn(float32(output), batch)
        ok = torch.isfinite(loss)
        finite = ok if finite is None else finite & ok
        (loss / len(groups)).backward()  # a non-finite loss is dropped below, with its step
        samples += len(batch["codes"])
        days += len(batches)
        for name, value in parts.items():  # on the device, in float64: no sync per term
            sums[name] = sums.get(name, 0.0) + value.double() * len(batches)
    return finite, sums, samples, days


def float32(output: Any) -> Any:
    """A model output with its floating-point tensors in float32 (nested dicts kept): what the
    loss reads after a bf16 forward pass."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, dict):
        return {key: float32(value) for key, value in output.items()}
    return output
