"""The training loop of one phase: AdamW, warm-up + cosine, clipping, early stopping on RankIC.

One optimiser step per trading day (a day batch). Per epoch:

1. the training days, in an order that depends on (seed, epoch) only (the dataset's `set_epoch`),
   at most `max_train_days_per_epoch` of them: a uniform random subset, also a function of
   (seed, epoch) only, so every epoch sees different days and a resumed run sees the same ones;
   each batch is augmented (phase 4), the loss is computed and, if finite, back-propagated with the
   gradient norm clipped; a non-finite loss or gradient skips the batch and is counted, and more
   than `max_nonfinite_share` of an epoch's batches skipped stops the run with an error;
2. weight averaging (phase 4, SWA or EMA) after each step;
3. validation, chronological, of the model or of its average: loss, IC and RankIC per horizon;
4. early stopping on the mean validation RankIC at `early_stop_horizon`; `best` is saved when it
   improves, `last` after every epoch, each holding everything needed to resume exactly.

Resuming from `last` restores weights, optimiser, scheduler, averaged weights, loss state, RNG
states, early-stopping state and metric history, so an interrupted run ends where an uninterrupted
one would.
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

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from atft_kedro.loader.datasets import DayDataset, day_loader
from atft_kedro.loader.day_table import to_date
from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.checkpoints import plain
from atft_kedro.training.phases import PhaseConfig, parameter_groups
from atft_kedro.training.seeding import restore_rng_state, rng_state
from atft_kedro.training.validation import evaluate, to_device

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many day batches of an epoch gave a non-finite loss or gradient."""


@dataclass
class LoopConfig:
    """Settings shared by every phase (the `training` block of parameters_training.yml)."""

    device: str = "auto"  # auto | cpu | cuda; mixed precision (bf16) on cuda only
    weight_decay: float = 0.01  # AdamW decoupled weight decay (weights only, not biases/norms)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 20  # optimiser steps (= training days) of linear warm-up
    min_lr_ratio: float = 0.05  # cosine decays the lr to this fraction of its peak
    grad_clip: float = 1.0  # max global L2 norm of the gradient
    early_stop_horizon: int = 1  # horizon (trading days) whose mean val RankIC stops training
    min_delta: float = 0.0  # RankIC improvement that counts as better
    max_nonfinite_share: float = 0.05  # share of an epoch's batches that may be skipped
    min_stocks_per_day: int = 5  # days with fewer valid targets are left out of IC / RankIC
    num_workers: int = 0  # DataLoader worker processes
    progress_bar: bool = True  # tqdm per epoch (on a terminal only)
    max_train_days_per_epoch: int | None = None  # random subset of training days per epoch

    @classmethod
    def from_params(cls, training: dict[str, Any]) -> LoopConfig:
        optimizer = training.get("optimizer") or {}
        schedule = training.get("schedule") or {}
        loader = training.get("loader") or {}
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
            num_workers=int(loader.get("num_workers", defaults.num_workers)),
            progress_bar=bool(training.get("progress_bar", defaults.progress_bar)),
            max_train_days_per_epoch=_optional_int(training.get("max_train_days_per_epoch")),
        )


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if int(value) < 1:
        raise ValueError(f"training.max_train_days_per_epoch must be ≥ 1 or null, got {value!r}")
    return int(value)


def epoch_day_subset(n_days: int, max_days: int | None, seed: int, epoch: int) -> np.ndarray:
    """Sorted positions (of n_days training days) trained in `epoch`: all, or `max_days` drawn
    uniformly without replacement by a generator seeded with (seed, epoch) only."""
    if max_days is None or max_days >= n_days:
        return np.arange(n_days)
    rng = np.random.default_rng([seed, epoch, _SUBSET_STREAM])
    return np.sort(rng.choice(n_days, size=max_days, replace=False))


_SUBSET_STREAM = 7  # keeps the subset's random stream apart from the dataset's shuffling stream


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


def weight_average(model: nn.Module, phase: PhaseConfig) -> AveragedModel | None:
    """The phase's running average of `model`'s weights (SWA: equal weights; EMA), or None."""
    if not phase.averaging.enabled:
        return None
    ema = phase.averaging.kind == "ema"
    return AveragedModel(
        model, multi_avg_fn=debiased_ema(phase.averaging.ema_decay) if ema else None
    )


def resolve_device(name: str) -> torch.device:
    """`auto` → cuda if available, else cpu; `cuda` without a GPU is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device is 'cuda' but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"training.device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


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


def train_phase(
    model: nn.Module,
    loss_fn: nn.Module,
    phase: PhaseConfig,
    loop: LoopConfig,
    train_data: DayDataset,
    val_data: DayDataset,
    save: Callable[[str, dict[str, Any]], Any],
    *,
    fold: int = 0,
    params: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> PhaseResult:
    """Train `model` (already configured with `apply_phase`) for one phase.

    `save(kind, state)` stores the `best` / `last` checkpoint dicts. `resume_state` is a `last`
    checkpoint of this phase to continue from (everything restored); otherwise the run starts at
    epoch 0 with a fresh optimiser. `on_epoch_end(metrics)` is called after `last` is saved.
    """
    device = resolve_device(loop.device)
    model.to(device)
    loss_fn.to(device)
    horizons = list(model.cfg.horizons)
    if loop.early_stop_horizon not in horizons:
        raise ValueError(
            f"training.early_stop_horizon={loop.early_stop_horizon} is not a model horizon {horizons}"
        )
    optimizer = torch.optim.AdamW(
        parameter_groups(model, phase.lr, phase.lr_multipliers, loop.weight_decay),
        lr=phase.lr,
        betas=loop.betas,
    )
    steps_per_epoch = max(1, min(len(train_data), loop.max_train_days_per_epoch or len(train_data)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(loop.warmup_steps, phase.epochs * steps_per_epoch, loop.min_lr_ratio),
    )
    averaged = weight_average(model, phase)
    stopper = EarlyStopping(phase.patience, loop.min_delta)
    history: list[dict[str, Any]] = []
    start_epoch, global_step = 0, 0
    if resume_state is not None:
        model.load_state_dict(resume_state["model_state"])
        optimizer.load_state_dict(resume_state["optimizer_state"])
        scheduler.load_state_dict(resume_state["scheduler_state"])
        if averaged is not None and resume_state.get("averaged_state") is not None:
            averaged.load_state_dict(resume_state["averaged_state"])
        if resume_state.get("loss_state") is not None:
            loss_fn.load_state_dict(resume_state["loss_state"])
        stopper.load_state_dict(resume_state["early_stopping"])
        history = list(resume_state["history"])
        start_epoch, global_step = int(resume_state["epoch"]), int(resume_state["global_step"])
        restore_rng_state(resume_state["rng_state"])
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    params_used = plain({"phase": dataclasses.asdict(phase), "loop": dataclasses.asdict(loop)})
    params_used["run"] = plain(params or {})

    for epoch in range(start_epoch, phase.epochs):
        if stopper.should_stop:
            break
        model.train()
        loss_fn.train()
        train_data.set_epoch(epoch)
        batches_in, n_batches = epoch_loader(train_data, loop, epoch)
        repairs_before = nonfinite_repairs(model)
        started = time.perf_counter()
        sums: dict[str, float] = {}
        steps = skipped = samples = batches = 0
        first_skip = None
        bar = tqdm(
            batches_in,
            total=n_batches,
            desc=f"fold {fold} phase {phase.phase} epoch {epoch + 1}/{phase.epochs}",
            disable=not (loop.progress_bar and sys.stderr.isatty()),
            leave=False,
        )
        for batch in bar:
            if len(batch["codes"]) == 0:
                continue
            batches += 1
            batch = augment_batch(to_device(batch, device), phase.augmentation)
            loss_before = {k: v.clone() for k, v in loss_fn.state_dict().items()}
            with amp:
                out = model(batch)
                loss, parts = loss_fn(out, batch)
            optimizer.zero_grad(set_to_none=True)
            finite = bool(torch.isfinite(loss))
            if finite:
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(
                    [p for g in optimizer.param_groups for p in g["params"]], loop.grad_clip
                )
                finite = bool(torch.isfinite(norm))
            if not finite:
                skipped += 1
                first_skip = first_skip or batch["date"]
                optimizer.zero_grad(set_to_none=True)
                loss_fn.load_state_dict(loss_before)  # a NaN must not poison the Sharpe EMA
                continue
            optimizer.step()
            scheduler.step()
            global_step += 1
            steps += 1
            if averaged is not None and epoch >= phase.averaging.start_epoch:
                averaged.update_parameters(model)
            samples += len(batch["codes"])
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix(
                loss=f"{parts['total']:.4f}",
                samples_s=f"{samples / (time.perf_counter() - started):.0f}",
                refresh=False,
            )
        bar.close()
        train_seconds = time.perf_counter() - started
        if skipped > loop.max_nonfinite_share * max(batches, 1):
            raise NonFiniteLossError(
                f"fold {fold} phase {phase.phase} epoch {epoch + 1}: {skipped} of {batches} day "
                f"batches had a non-finite loss or gradient (first {first_skip}; limit "
                f"{loop.max_nonfinite_share:.0%}): lower the learning rate or check the features"
            )
        use_average = averaged is not None and int(averaged.n_averaged) > 0
        judged = averaged.module if use_average else model
        val = evaluate(
            judged, loss_fn, day_loader(val_data, loop.num_workers), horizons, device,
            loop.min_stocks_per_day,
        )  # fmt: skip
        score = val[f"val_rank_ic_{loop.early_stop_horizon}d"]
        improved = stopper.step(score, epoch)
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "lr": scheduler.get_last_lr()[0],
            **{f"train_{k}": (v / steps if steps else None) for k, v in sums.items()},
            **val,
            "val_mean_rank_ic": score,
            "best_epoch": stopper.best_epoch + 1,
            "improved": improved,
            "averaged_weights": use_average,
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
            "samples_per_s": samples / train_seconds if train_seconds > 0 else None,
            "train_days": steps,
            "train_samples": samples,
            "nonfinite_skips": skipped,
            "nonfinite_repairs": nonfinite_repairs(model) - repairs_before,
            "peak_rss_mib": peak_rss_mib(),
        }
        history.append(metrics)
        state = {
            "model_config": plain(dataclasses.asdict(model.cfg)),
            "fold": fold,
            "phase": phase.phase,
            "epoch": epoch + 1,
            "global_step": global_step,
            "early_stopping": stopper.state_dict(),
            "history": history,
            "params": params_used,
        }
        if improved:
            save("best", {**state, "model_state": judged.state_dict()})
        save(
            "last",
            {
                **state,
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict(),
                "averaged_state": averaged.state_dict() if averaged is not None else None,
                "loss_state": loss_fn.state_dict(),
                "rng_state": rng_state(),
            },
        )
        log.info(
            "fold %d phase %d epoch %d/%d: train loss %s, val loss %s, val RankIC@%dd %s%s, "
            "%.1f s, %.0f samples/s, %d non-finite skipped",
            fold, phase.phase, epoch + 1, phase.epochs, _fmt(metrics.get("train_total")),
            _fmt(val["val_loss"]), loop.early_stop_horizon, _fmt(score),
            " (best)" if improved else "", metrics["seconds"], metrics["samples_per_s"] or 0.0,
            skipped,
        )  # fmt: skip
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    best = stopper.best if math.isfinite(stopper.best) else None
    return PhaseResult(history, stopper.best_epoch + 1, best, stopper.should_stop)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
