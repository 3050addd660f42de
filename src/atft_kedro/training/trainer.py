"""The training loop of one phase: AdamW, warm-up + cosine, clipping, early stopping on RankIC.

One loop for one process and for N ranks (``training.distributed``): a step trains the days
``Sharing`` gives it (one day; a rank's day of a DDP job; or, on one process, the N days an N-rank
job would average), back-propagates their mean loss and applies one optimiser step. Per phase:

1. **restore**: from a ``last`` checkpoint of this phase, everything (weights, optimiser,
   scheduler, averaged weights, loss state, RNG states, early stopping, history), so an interrupted
   run ends where an uninterrupted one would;
2. **train an epoch**: the epoch's days (all, or ``max_train_days_per_epoch`` drawn by
   (seed, epoch)), augmented in phase 4; a non-finite loss or gradient skips the step (on every
   rank) and is counted, and more than ``max_nonfinite_share`` of an epoch's steps skipped stops
   the run with an error; weight averaging (phase 4, SWA or EMA) after each step;
3. **evaluate**: chronological validation of the model or of its average: loss, IC and RankIC per
   horizon; early stopping on the mean RankIC at ``early_stop_horizon``;
4. **checkpoint**: ``best`` when it improved, ``last`` after every epoch (rank 0 only).

The per-epoch metrics record is pinned in docs/contracts.md ("training_metrics").
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from atft_kedro.errors import ParameterError
from atft_kedro.loader.datasets import DayDataset, LoaderConfig, day_loader
from atft_kedro.loader.day_batch import collate_days
from atft_kedro.loader.day_table import to_date
from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.checkpoints import plain
from atft_kedro.training.distributed import (
    Rank,
    all_finite,
    day_generator,
    epoch_day_subset,
    resolve_device,
    step_days,
)
from atft_kedro.training.phases import PhaseConfig, parameter_groups
from atft_kedro.training.seeding import restore_rng_state, rng_state
from atft_kedro.training.validation import evaluate, to_device

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many day batches of an epoch gave a non-finite loss or gradient."""


#: keys of the `training` block (conf/base/parameters_training.yml)
TRAINING_KEYS = {"folds", "device", "threads", "progress_bar", "max_train_days_per_epoch", "loader",
                 "scaler", "model", "optimizer", "schedule", "grad_clip", "early_stop_horizon",
                 "min_delta", "min_stocks_per_day", "max_nonfinite_share", "phases",
                 "days_per_step", "inputs"}  # fmt: skip


@dataclass
class LoopConfig:
    """Settings shared by every phase (the `training` block of parameters_training.yml)."""

    device: str = "auto"  # auto | cpu | cuda; mixed precision (bf16) on cuda only
    weight_decay: float = 0.01  # AdamW decoupled weight decay (weights only, not biases/norms)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50  # training days of linear warm-up (steps × days a step of the job)
    min_lr_ratio: float = 0.05  # cosine decays the lr to this fraction of its peak
    grad_clip: float = 1.0  # max global L2 norm of the gradient
    early_stop_horizon: int = 1  # horizon (trading days) whose mean val RankIC stops training
    min_delta: float = 0.0  # RankIC improvement that counts as better
    max_nonfinite_share: float = 0.05  # share of an epoch's batches that may be skipped
    min_stocks_per_day: int = 10  # days with fewer valid targets are left out of IC / RankIC
    num_workers: int = 0  # DataLoader worker processes (from training.loader)
    progress_bar: bool = True  # tqdm per epoch (on a terminal only)
    max_train_days_per_epoch: int | None = 150  # random subset of training days per epoch
    days_per_step: int = 1  # trading days per optimiser step, batched in one forward pass

    @classmethod
    def from_params(cls, training: dict[str, Any]) -> LoopConfig:
        """From the `training` block; an unknown key there or in `optimizer` / `schedule` is a
        one-line ParameterError (the other sub-blocks are checked by their own parsers)."""
        optimizer = training.get("optimizer") or {}
        schedule = training.get("schedule") or {}
        loader = training.get("loader") or {}
        for name, block, known in (("training", training, TRAINING_KEYS),
                                   ("training.optimizer", optimizer, {"weight_decay", "betas"}),
                                   ("training.schedule", schedule,
                                    {"warmup_steps", "min_lr_ratio"})):  # fmt: skip
            unknown = sorted(set(block) - known)
            if unknown:
                raise ParameterError(f"{name}: unknown key(s) {unknown}; known: {sorted(known)}")
        defaults = cls()
        return cls(
            device=training.get("device", defaults.device),
            weight_decay=float(optimizer.get("weight_decay", defaults.weight_decay)),
            betas=tuple(optimizer.get("betas", defaults.betas)),
            warmup_steps=int(schedule.get("warmup_steps", defaults.warmup_steps)),
            min_lr_ratio=float(schedule.get("min_lr_ratio", defaults.min_lr_ratio)),
            grad_clip=float(training.get("grad_clip", defaults.grad_clip)),
            early_stop_horizon=int(training.get("early_stop_horizon", defaults.early_stop_horizon)),
            min_delta=float(training.get("min_delta", defaults.min_delta)),
            max_nonfinite_share=float(
                training.get("max_nonfinite_share", defaults.max_nonfinite_share)
            ),
            min_stocks_per_day=int(training.get("min_stocks_per_day", defaults.min_stocks_per_day)),
            num_workers=int(LoaderConfig.from_params(loader).num_workers),
            progress_bar=bool(training.get("progress_bar", defaults.progress_bar)),
            max_train_days_per_epoch=_optional_int(
                training.get("max_train_days_per_epoch", defaults.max_train_days_per_epoch)
            ),
            days_per_step=_positive_int(
                "days_per_step", training.get("days_per_step", defaults.days_per_step)
            ),
        )


def _positive_int(name: str, value: Any) -> int:
    if int(value) < 1:
        raise ParameterError(f"training.{name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if int(value) < 1:
        raise ValueError(f"training.max_train_days_per_epoch must be ≥ 1 or null, got {value!r}")
    return int(value)


def epoch_loader(data: DayDataset, loop: LoopConfig, epoch: int) -> tuple[Any, int]:
    """The training batches of `epoch` (after `data.set_epoch(epoch)`) and their number.

    In memory, unselected days are never built; streaming reads every block (the unit of I/O) and
    drops the unselected days before they reach the model.
    """
    seed = int(data.seed)
    if isinstance(data, InMemoryDayDataset):
        keep = set(epoch_day_subset(len(data), loop.max_train_days_per_epoch, seed, epoch).tolist())
        order = [i for i in data.order() if i in keep]
        return day_loader(data, loop.num_workers, sampler=order), len(order)
    subset = epoch_day_subset(len(data), loop.max_train_days_per_epoch, seed, epoch)
    if subset.size == len(data):
        return day_loader(data, loop.num_workers), len(data)
    dates = {to_date(int(d)) for d in data.table.calendar[data.days[subset]]}
    batches = (b for b in day_loader(data, loop.num_workers) if b["date"] in dates)
    return batches, int(subset.size)


def debiased_ema(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    """EMA update with Adam's bias correction: after t updates the average is
    Σ_s (1 − β) β^(t−s) θ_s / (1 − β^t), so the weights of the first step (near the random
    initialisation) keep weight ≈ (1 − β) instead of β^(t−1). With β = 0.998 and 450 steps a plain
    EMA still held 41% of the first step's weights."""

    @torch.no_grad()
    def update(averaged: list, current: list, num_averaged: torch.Tensor) -> None:
        t = float(num_averaged) + 1.0  # this update's index; AveragedModel copies at t = 1
        torch._foreach_lerp_(averaged, current, (1.0 - decay) / (1.0 - decay**t))

    return update


def weight_average(
    model: nn.Module, phase: PhaseConfig, days_per_step: int = 1
) -> AveragedModel | None:
    """The phase's running average of `model`'s weights (SWA: equal weights; EMA), or None.

    The EMA decay is per training day: a step of D days decays by ``ema_decay ** D``, so the
    average spans the same days whatever the days per step (as the warm-up does).
    """
    if not phase.averaging.enabled:
        return None
    ema = phase.averaging.kind == "ema"
    decay = phase.averaging.ema_decay**days_per_step
    return AveragedModel(model, multi_avg_fn=debiased_ema(decay) if ema else None)


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """lr multiplier at step s: linear warm-up to 1, then cosine down to `min_ratio` at the end."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


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


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    scale = 1 / 1024**2 if sys.platform == "darwin" else 1 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def nonfinite_repairs(model: nn.Module) -> int:
    """Non-finite values repaired so far by FAN and SAN (their `nonfinite_count` buffers)."""
    return sum(int(m.nonfinite_count) for m in model.modules() if hasattr(m, "nonfinite_count"))


@dataclass
class PhaseResult:
    history: list[dict[str, Any]]  # one metrics dict per epoch
    best_epoch: int
    best_value: float | None  # mean val RankIC at the early-stopping horizon
    stopped_early: bool


@dataclass(frozen=True)
class Sharing:
    """How this process shares the days of a step.

    ``rank``: its place in a DDP job (one day per rank per step; DDP averages the gradients).
    ``accumulate``: on one process, the days per step (> 1: the twin of an ``accumulate``-rank job,
    gradients averaged in place). The default is one process, one day per step, in the dataset's
    own shuffled order; the others index days directly and need the in-memory dataset.
    """

    rank: Rank = Rank()
    accumulate: int = 1

    @property
    def indexed(self) -> bool:
        return self.rank.world_size > 1 or self.accumulate > 1

    @property
    def world_size(self) -> int:
        """Days per step of the whole job (recorded in checkpoints)."""
        return self.rank.world_size * self.accumulate


@dataclass
class _Steps:
    """What a step needs: the model (and its DDP wrapper), loss, optimiser state, device."""

    model: nn.Module
    trained: nn.Module  # the model, or its DDP wrapper (forward only)
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    averaged: AveragedModel | None
    device: torch.device
    phase: PhaseConfig
    loop: LoopConfig
    sharing: Sharing
    seed: int
    global_step: int = 0
    fold: int = 0
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # recorded in checkpoints

    def autocast(self) -> Any:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def epoch_steps(
    data: DayDataset, loop: LoopConfig, sharing: Sharing, seed: int, epoch: int
) -> tuple[Any, int]:
    """The steps of `epoch` as lists of (day index or None, batch), and their number: each step
    takes ``days_per_step`` consecutive one-day steps (the last may take fewer)."""
    if not sharing.indexed:
        data.set_epoch(epoch)
        batches, n = epoch_loader(data, loop, epoch)
        steps: Any = _one_day_steps(batches)
    else:
        days = step_days(len(data), sharing.rank, sharing.accumulate, seed, epoch,
                         loop.max_train_days_per_epoch)  # fmt: skip
        steps, n = ([(d, data[d]) for d in step] for step in days), len(days)
    per_step = loop.days_per_step
    if per_step == 1:
        return steps, n
    return (sum(chunk, []) for chunk in _chunks(steps, per_step)), -(-n // per_step)


def _one_day_steps(batches: Any) -> Any:
    """[(None, batch)] per batch, iterating ``batches`` only when the first step is taken (a
    DataLoader draws its base seed from the global RNG when iterated)."""
    for batch in batches:
        yield [(None, batch)]


def _chunks(items: Any, size: int) -> Any:
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


def _train_step(run: _Steps, step: list[tuple[int | None, dict]], epoch: int) -> dict | None:
    """Forward, backward and update on one step's days; the loss parts summed over its days, or
    None when the step was skipped (a non-finite loss or gradient on any rank).

    The step's days go through the model as ``groups`` (one per rank of the job the step stands
    for), each a ``days_per_step``-day batch (``collate_days``): one forward pass per group.
    """
    phase, loop = run.phase, run.loop
    loss_before = {k: v.clone() for k, v in run.loss_fn.state_dict().items()}
    run.optimizer.zero_grad(set_to_none=True)
    groups = [step[r :: run.sharing.accumulate] for r in range(run.sharing.accumulate)]
    finite, sums, samples, days = None, {}, 0, 0
    for group in groups:
        batches = []
        for day, batch in group:
            if len(batch["codes"]) == 0:
                continue
            generator = day_generator(run.seed, epoch, day, run.device) if day is not None else None
            batches.append(
                augment_batch(to_device(batch, run.device), phase.augmentation, generator)
            )
        if not batches:
            continue
        batch = collate_days(batches)
        with run.autocast():
            loss, parts = run.loss_fn(run.trained(batch), batch)
        ok = torch.isfinite(loss)
        finite = ok if finite is None else finite & ok
        (loss / len(groups)).backward()  # a non-finite loss is dropped below, with its step
        samples += len(batch["codes"])
        days += len(batches)
        for name, value in parts.items():  # on the device, in float64: no sync per term
            sums[name] = sums.get(name, 0.0) + value.double() * len(batches)
    if samples:
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, loop.grad_clip)
        finite = bool(finite & torch.isfinite(norm))  # the step's one host sync
    else:
        finite = True
    if not all_finite(finite, run.device):
        run.optimizer.zero_grad(set_to_none=True)
        run.loss_fn.load_state_dict(loss_before)  # a NaN must not poison the Sharpe EMA
        return None
    if not samples:
        return {}
    run.optimizer.step()
    run.scheduler.step()
    run.global_step += 1
    if run.averaged is not None and epoch >= phase.averaging.start_epoch:
        run.averaged.update_parameters(run.model)
    return sums | {"_samples": samples, "_days": days}


def train_epoch(run: _Steps, data: DayDataset, epoch: int, fold: int) -> dict[str, Any]:
    """One epoch of steps; its training metrics (``train_*`` means over the trained days)."""
    run.model.train()
    run.loss_fn.train()
    steps_in, n_steps = epoch_steps(data, run.loop, run.sharing, run.seed, epoch)
    repairs_before = nonfinite_repairs(run.model)
    started = time.perf_counter()
    sums: dict[str, float] = {}
    days = samples = skipped = tried = 0
    first_skip = None
    bar = tqdm(
        steps_in,
        total=n_steps,
        desc=f"fold {fold} phase {run.phase.phase} epoch {epoch + 1}/{run.phase.epochs}",
        disable=not (run.loop.progress_bar and run.sharing.rank.is_main and sys.stderr.isatty()),
        leave=False,
    )
    for step in bar:
        if run.sharing.rank.world_size == 1 and all(len(b["codes"]) == 0 for _, b in step):
            continue  # (under DDP every rank must take part in every step)
        tried += 1
        out = _train_step(run, step, epoch)
        if out is None:
            skipped += 1
            first_skip = first_skip or step[0][1]["date"]
            continue
        days += out.pop("_days", 0)
        samples += out.pop("_samples", 0)
        for name, value in out.items():
            sums[name] = sums.get(name, 0.0) + value
        bar.set_postfix(samples_s=f"{samples / (time.perf_counter() - started):.0f}", refresh=False)
    bar.close()
    seconds = time.perf_counter() - started
    if skipped > run.loop.max_nonfinite_share * max(tried, 1):
        raise NonFiniteLossError(
            f"fold {fold} phase {run.phase.phase} epoch {epoch + 1}: {skipped} of {tried} steps "
            f"had a non-finite loss or gradient (first {first_skip}; limit "
            f"{run.loop.max_nonfinite_share:.0%}): lower the learning rate or check the features"
        )
    return {
        **{f"train_{k}": (float(v) / days if days else None) for k, v in sums.items()},
        "train_seconds": seconds,
        "samples_per_s": samples / seconds if seconds > 0 else None,
        "train_days": days,
        "train_samples": samples,
        "nonfinite_skips": skipped,
        "nonfinite_repairs": nonfinite_repairs(run.model) - repairs_before,
    }


def _restore(run: _Steps, stopper: EarlyStopping, state: dict[str, Any]) -> tuple[list, int]:
    """Continue from a ``last`` checkpoint of this phase: (history, epochs done)."""
    run.model.load_state_dict(state["model_state"])
    run.optimizer.load_state_dict(state["optimizer_state"])
    run.scheduler.load_state_dict(state["scheduler_state"])
    if run.averaged is not None and state.get("averaged_state") is not None:
        run.averaged.load_state_dict(state["averaged_state"])
    if state.get("loss_state") is not None:
        run.loss_fn.load_state_dict(state["loss_state"])
    stopper.load_state_dict(state["early_stopping"])
    run.global_step = int(state["global_step"])
    restore_rng_state(state["rng_state"])
    return list(state["history"]), int(state["epoch"])


def _checkpoint(
    run: _Steps, save: Callable[[str, dict[str, Any]], Any], state: dict[str, Any],
    judged: nn.Module, improved: bool,
) -> None:  # fmt: skip
    """Save ``best`` (the judged weights) when it improved and ``last`` (everything to resume)."""
    if improved:
        save("best", {**state, "model_state": judged.state_dict()})
    save("last", {
        **state,
        "model_state": run.model.state_dict(),
        "optimizer_state": run.optimizer.state_dict(),
        "scheduler_state": run.scheduler.state_dict(),
        "averaged_state": run.averaged.state_dict() if run.averaged is not None else None,
        "loss_state": run.loss_fn.state_dict(),
        "rng_state": rng_state(),
    })  # fmt: skip


def _setup(
    model: nn.Module, loss_fn: nn.Module, phase: PhaseConfig, loop: LoopConfig,
    train_data: DayDataset, *, sharing: Sharing, seed: int,
) -> _Steps:  # fmt: skip
    """Device, optimiser, schedule, weight average and (under DDP) the wrapped model."""
    device = resolve_device(loop.device)
    model.to(device)
    loss_fn.to(device)
    if loop.early_stop_horizon not in model.cfg.horizons:
        raise ValueError(f"training.early_stop_horizon={loop.early_stop_horizon} is not a model "
                         f"horizon {list(model.cfg.horizons)}")  # fmt: skip
    if sharing.indexed and not isinstance(train_data, InMemoryDayDataset):
        raise TypeError("distributed training needs training.loader.implementation: in_memory")
    optimizer = torch.optim.AdamW(
        parameter_groups(model, phase.lr, phase.lr_multipliers, loop.weight_decay),
        lr=phase.lr,
        betas=loop.betas,
    )
    if sharing.indexed:
        day_steps = len(step_days(len(train_data), sharing.rank, sharing.accumulate, seed, 0,
                                  loop.max_train_days_per_epoch))  # fmt: skip
    else:
        day_steps = min(len(train_data), loop.max_train_days_per_epoch or len(train_data))
    steps_per_epoch = -(-day_steps // loop.days_per_step)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(
            -(-loop.warmup_steps // (sharing.world_size * loop.days_per_step)),
            phase.epochs * max(1, steps_per_epoch),
            loop.min_lr_ratio,
        ),  # fmt: skip
    )
    trained = model
    if sharing.rank.world_size > 1:
        trained = DistributedDataParallel(
            model, device_ids=[device.index] if device.index is not None else None
        )
    average = weight_average(model, phase, sharing.world_size * loop.days_per_step)
    return _Steps(model, trained, loss_fn, optimizer, scheduler, average,
                  device, phase, loop, sharing, seed)  # fmt: skip


def train_phase(
    model: nn.Module,
    loss_fn: nn.Module,
    phase: PhaseConfig,
    loop: LoopConfig,
    train_data: DayDataset,
    val_data: DayDataset,
    *,
    save: Callable[[str, dict[str, Any]], Any],
    fold: int = 0,
    params: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    sharing: Sharing = Sharing(),
    seed: int | None = None,
) -> PhaseResult:
    """Train `model` (already configured with `apply_phase`) for one phase.

    `save(kind, state)` stores the `best` / `last` checkpoint dicts (called on rank 0 only).
    `resume_state` is a `last` checkpoint of this phase to continue from; otherwise the run starts
    at epoch 0 with a fresh optimiser. `on_epoch_end(metrics)` is called after `last` is saved.
    `sharing` shares each step's days (one process by default); `seed` drives the days of indexed
    sharing and their augmentation (default: the training dataset's seed).
    """
    seed = int(train_data.seed) if seed is None else int(seed)
    run = _setup(model, loss_fn, phase, loop, train_data, sharing=sharing, seed=seed)
    run.fold = fold
    run.params = plain({"phase": dataclasses.asdict(phase), "loop": dataclasses.asdict(loop),
                        "run": params or {}})  # fmt: skip
    stopper = EarlyStopping(phase.patience, loop.min_delta)
    history, start_epoch = [], 0
    if resume_state is not None:
        history, start_epoch = _restore(run, stopper, resume_state)
    for epoch in range(start_epoch, phase.epochs):
        if stopper.should_stop:
            break
        started = time.perf_counter()
        trained = train_epoch(run, train_data, epoch, fold)
        judged, val = _validate(run, val_data)
        improved = stopper.step(val["val_mean_rank_ic"], epoch)
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "global_step": run.global_step,
            "lr": run.scheduler.get_last_lr()[0],
            **trained,
            **val,
            "best_epoch": stopper.best_epoch + 1,
            "improved": improved,
            "averaged_weights": judged is not model,
            "seconds": time.perf_counter() - started,
            "peak_rss_mib": peak_rss_mib(),
        }
        history.append(metrics)
        if sharing.rank.is_main:
            _checkpoint(run, save, _state(run, epoch, stopper, history), judged, improved)
            _log_epoch(run, metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    best = stopper.best if math.isfinite(stopper.best) else None
    return PhaseResult(history, stopper.best_epoch + 1, best, stopper.should_stop)


def _validate(run: _Steps, val_data: DayDataset) -> tuple[nn.Module, dict[str, Any]]:
    """The judged weights (the running average once it has any, else the model) and their
    validation metrics, with ``val_mean_rank_ic`` at the early-stopping horizon."""
    use_average = run.averaged is not None and int(run.averaged.n_averaged) > 0
    judged = run.averaged.module if use_average else run.model
    val = evaluate(judged, run.loss_fn, day_loader(val_data, run.loop.num_workers),
                   list(run.model.cfg.horizons), run.device, run.loop.min_stocks_per_day)  # fmt: skip
    return judged, {**val, "val_mean_rank_ic": val[f"val_rank_ic_{run.loop.early_stop_horizon}d"]}


def _state(run: _Steps, epoch: int, stopper: EarlyStopping, history: list) -> dict[str, Any]:
    """What every checkpoint of this epoch records besides weights and optimiser state."""
    return {
        "model_config": plain(dataclasses.asdict(run.model.cfg)),
        "fold": run.fold,
        "phase": run.phase.phase,
        "epoch": epoch + 1,
        "global_step": run.global_step,
        "early_stopping": stopper.state_dict(),
        "history": history,
        "params": run.params,
        "world_size": run.sharing.world_size,
        "seed": run.seed,
    }


def _log_epoch(run: _Steps, m: dict[str, Any]) -> None:
    log.info(
        "fold %d phase %d epoch %d/%d: train loss %s, val loss %s, val RankIC@%dd %s%s, "
        "%.1f s, %.0f samples/s, %d non-finite skipped",
        run.fold, run.phase.phase, m["epoch"], run.phase.epochs, _fmt(m.get("train_total")),
        _fmt(m["val_loss"]), run.loop.early_stop_horizon, _fmt(m["val_mean_rank_ic"]),
        " (best)" if m["improved"] else "", m["seconds"], m["samples_per_s"] or 0.0,
        m["nonfinite_skips"],
    )  # fmt: skip


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
