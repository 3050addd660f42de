"""The training loop of one phase: forward, backward, clip, step; validate; checkpoint.

One loop for one process and for N ranks: a step trains the days its ``StepPlan`` gives it (one
day; a rank's group of a DDP job; or, on one process, the groups an N-rank job would average),
back-propagates their mean loss and applies one optimiser step. The optimiser, the schedule, the
weight average and early stopping are in ``training.optimisation``; a step's forward and backward
passes in ``training.steps``; what a checkpoint holds, and restoring it, in
``training.checkpoints``. Per phase:

1. **restore**: from a ``last`` checkpoint of this phase, everything (weights, optimiser,
   scheduler, averaged weights, loss state, RNG states, early stopping, history), so an interrupted
   run ends where an uninterrupted one would;
2. **train an epoch**: the epoch's days (all, or ``max_train_days_per_epoch`` drawn by
   (seed, epoch)), augmented in phase 4; a non-finite loss or gradient skips the step (on every
   rank) and is counted, and more than ``max_nonfinite_share`` of an epoch's steps skipped stops
   the run with an error; weight averaging (SWA or EMA) after each step;
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from atft_kedro.loader.datasets import DayDataset, day_loader
from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.training.checkpoints import epoch_state, plain, restore, save_epoch
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.distributed import all_finite, resolve_device
from atft_kedro.training.optimisation import EarlyStopping, adamw, lr_schedule, weight_average
from atft_kedro.training.phases import PhaseConfig
from atft_kedro.training.steps import Step, StepPlan, forward_backward
from atft_kedro.training.validation import evaluate

if TYPE_CHECKING:
    from atft_kedro.model.atft_gat_fan import ATFTGATFAN

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many steps of an epoch gave a non-finite loss or gradient."""


@dataclass
class PhaseResult:
    history: list[dict[str, Any]]  # one metrics dict per epoch
    best_epoch: int
    best_value: float | None  # mean val RankIC at the early-stopping horizon
    stopped_early: bool


@dataclass
class PhaseRun:
    """What a step needs: the model (and its DDP wrapper), loss, optimiser state, device, and
    the phase's settings."""

    model: ATFTGATFAN
    trained: nn.Module  # the model, or its DDP wrapper (forward only)
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    averaged: AveragedModel | None
    device: torch.device
    spec: PhaseConfig
    cfg: TrainingConfig
    steps: StepPlan
    seed: int
    global_step: int = 0
    fold: int = 0
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # recorded in checkpoints

    def autocast(self) -> Any:
        """bf16 autocast for the forward pass on CUDA; nothing on the CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _setup(
    model: ATFTGATFAN,
    loss_fn: nn.Module,
    spec: PhaseConfig,
    cfg: TrainingConfig,
    train_data: DayDataset,
    *,
    steps: StepPlan,
    seed: int,
) -> PhaseRun:
    """Device, optimiser, schedule, weight average and (under DDP) the wrapped model."""
    device = resolve_device(cfg.device)
    model.to(device)
    loss_fn.to(device)
    if steps.indexed and not isinstance(train_data, InMemoryDayDataset):
        raise TypeError("distributed training needs training.loader.implementation: in_memory")
    optimizer = adamw(model, spec, cfg.optimizer)
    per_epoch = steps.steps_per_epoch(len(train_data), cfg.max_train_days_per_epoch, seed)
    scheduler = lr_schedule(optimizer, cfg.schedule, steps, spec.epochs * max(1, per_epoch))
    trained: nn.Module = model
    if steps.rank.world_size > 1:
        trained = DistributedDataParallel(
            model, device_ids=[device.index] if device.index is not None else None
        )
    average = weight_average(model, spec.averaging, steps)
    return PhaseRun(
        model, trained, loss_fn, optimizer, scheduler, average, device, spec, cfg, steps, seed
    )


def _train_step(run: PhaseRun, step: Step, epoch: int) -> dict | None:
    """Forward, backward and update on one step's days; the loss parts summed over its days, or
    None when the step was skipped (a non-finite loss or gradient on any rank)."""
    loss_before = {k: v.clone() for k, v in run.loss_fn.state_dict().items()}
    run.optimizer.zero_grad(set_to_none=True)
    finite, sums, samples, days = forward_backward(run, step, epoch)
    if samples:
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, run.cfg.grad_clip)
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
    if run.averaged is not None and epoch >= run.spec.averaging.start_epoch:
        run.averaged.update_parameters(run.model)
    return sums | {"_samples": samples, "_days": days}


def train_epoch(run: PhaseRun, data: DayDataset, epoch: int, fold: int) -> dict[str, Any]:
    """One epoch of steps; its training metrics (``train_*`` means over the trained days)."""
    run.model.train()
    run.loss_fn.train()
    cfg = run.cfg
    steps, n_steps = run.steps.epoch_steps(
        data, cfg.max_train_days_per_epoch, run.seed, epoch, cfg.loader.num_workers
    )
    repairs_before = nonfinite_repairs(run.model)
    started = time.perf_counter()
    sums: dict[str, float] = {}
    days = samples = skipped = tried = 0
    first_skip = None
    bar = _progress_bar(run, steps, n_steps, epoch, fold)
    for step in bar:
        if run.steps.rank.world_size == 1 and all(len(b["codes"]) == 0 for _, b in step):
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
    if skipped > cfg.max_nonfinite_share * max(tried, 1):
        raise NonFiniteLossError(
            f"fold {fold} phase {run.spec.phase} epoch {epoch + 1}: {skipped} of {tried} steps "
            f"had a non-finite loss or gradient (first {first_skip}; limit "
            f"{cfg.max_nonfinite_share:.0%}): lower the learning rate or check the features"
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


def _progress_bar(run: PhaseRun, steps: Iterable[Step], n_steps: int, epoch: int, fold: int) -> Any:
    """The epoch's steps under a tqdm bar, shown on rank 0 when stderr is a terminal."""
    show = run.cfg.progress_bar and run.steps.rank.is_main and sys.stderr.isatty()
    return tqdm(
        steps,
        total=n_steps,
        disable=not show,
        leave=False,
        desc=f"fold {fold} phase {run.spec.phase} epoch {epoch + 1}/{run.spec.epochs}",
    )


def train_phase(
    model: ATFTGATFAN,
    loss_fn: nn.Module,
    spec: PhaseConfig,
    cfg: TrainingConfig,
    train_data: DayDataset,
    val_data: DayDataset,
    *,
    steps: StepPlan,
    save: Callable[[str, dict[str, Any]], Any],
    fold: int = 0,
    params: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    seed: int | None = None,
) -> PhaseResult:
    """Train `model` (already configured with `apply_phase(model, spec)`) for one phase.

    ``steps`` shares each step's days (``StepPlan``: ranks, accumulation, days per pass).
    `save(kind, state)` stores the `best` / `last` checkpoint dicts (called on rank 0 only).
    `resume_state` is a `last` checkpoint of this phase to continue from; otherwise the run starts
    at epoch 0 with a fresh optimiser. `on_epoch_end(metrics)` is called after `last` is saved.
    `seed` drives the days of indexed steps and their augmentation (default: the training
    dataset's seed); `params` are recorded in the checkpoints.
    """
    seed = int(train_data.seed) if seed is None else int(seed)
    run = _setup(model, loss_fn, spec, cfg, train_data, steps=steps, seed=seed)
    run.fold = fold
    run.params = plain({"phase": dataclasses.asdict(spec), "run": params or {}})
    stopper = EarlyStopping(spec.patience, cfg.min_delta)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume_state is not None:
        history, start_epoch = restore(run, stopper, resume_state)
    for epoch in range(start_epoch, spec.epochs):
        if stopper.should_stop:
            break
        metrics, judged = _epoch(run, train_data, val_data, epoch, stopper)
        history.append(metrics)
        if steps.rank.is_main:
            save_epoch(
                run, save, epoch_state(run, epoch, stopper, history), judged, metrics["improved"]
            )
            _log_epoch(run, metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    best = stopper.best if math.isfinite(stopper.best) else None
    return PhaseResult(history, stopper.best_epoch + 1, best, stopper.should_stop)


def _epoch(
    run: PhaseRun,
    train_data: DayDataset,
    val_data: DayDataset,
    epoch: int,
    stopper: EarlyStopping,
) -> tuple[dict[str, Any], nn.Module]:
    """Train and validate one epoch: its metrics record and the judged weights."""
    started = time.perf_counter()
    trained = train_epoch(run, train_data, epoch, run.fold)
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
        "averaged_weights": judged is not run.model,
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
    }
    return metrics, judged


def _validate(run: PhaseRun, val_data: DayDataset) -> tuple[nn.Module, dict[str, Any]]:
    """The judged weights (the running average once it has any, else the model) and their
    validation metrics, with ``val_mean_rank_ic`` at the early-stopping horizon."""
    averaged = run.averaged
    use_average = averaged is not None and int(averaged.n_averaged) > 0
    judged = averaged.module if averaged is not None and use_average else run.model
    batches = day_loader(val_data, run.cfg.loader.num_workers)
    val = evaluate(
        judged,
        run.loss_fn,
        batches,
        list(run.model.cfg.horizons),
        run.device,
        run.cfg.min_stocks_per_day,
    )
    return judged, {**val, "val_mean_rank_ic": val[f"val_rank_ic_{run.cfg.early_stop_horizon}d"]}


def _log_epoch(run: PhaseRun, m: dict[str, Any]) -> None:
    log.info(
        "fold %d phase %d epoch %d/%d: train loss %s, val loss %s, val RankIC@%dd %s%s, "
        "%.1f s, %.0f samples/s, %d non-finite skipped",
        run.fold,
        run.spec.phase,
        m["epoch"],
        run.spec.epochs,
        _fmt(m.get("train_total")),
        _fmt(m["val_loss"]),
        run.cfg.early_stop_horizon,
        _fmt(m["val_mean_rank_ic"]),
        " (best)" if m["improved"] else "",
        m["seconds"],
        m["samples_per_s"] or 0.0,
        m["nonfinite_skips"],
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    scale = 1 / 1024**2 if sys.platform == "darwin" else 1 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def nonfinite_repairs(model: nn.Module) -> int:
    """Non-finite values repaired so far by FAN and SAN (their `nonfinite_count` buffers)."""
    counted = [m for m in model.modules() if hasattr(m, "nonfinite_count")]
    return sum(int(cast(torch.Tensor, m.nonfinite_count)) for m in counted)
