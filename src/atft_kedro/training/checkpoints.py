"""Training checkpoints: one dict per (fold, phase, kind), kind `best` or `last`.

A checkpoint holds only tensors and plain Python values, so it loads with
`torch.load(..., weights_only=True)` (a checkpoint is untrusted input, never unpickled code):

    model_state      state_dict of the model (for phase 4's `best`: the averaged weights)
    model_config     ModelConfig as a dict
    optimizer_state  AdamW state;  scheduler_state: LambdaLR state
    averaged_state   AveragedModel state (phase 4), or None
    loss_state       state of the loss (EMA moments of the Sharpe term), or None
    epoch            epochs completed;  global_step: optimiser steps taken
    rng_state        python / numpy / torch generator states (training.seeding)
    early_stopping   EarlyStopping.state_dict();  history: per-epoch metric dicts
    fold, phase, params   the fold, the phase and the parameters used
    world_size, seed      groups of days per step of the job (StepPlan.groups), the days' seed

``epoch_state`` / ``save_epoch`` write a phase's checkpoints after an epoch and ``restore``
continues a phase from its ``last`` (``trainer.train_phase``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from atft_kedro.atomic import atomic_path
from atft_kedro.training.seeding import restore_rng_state, rng_state

if TYPE_CHECKING:
    from atft_kedro.training.optimisation import EarlyStopping
    from atft_kedro.training.trainer import PhaseRun

KINDS = ("best", "last")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; a missing file is a one-line error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


class CheckpointStore:
    """Checkpoints of every (fold, phase, kind) under one directory: `fold{f}/phase{p}/{kind}.pt`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def path_for(self, fold: int, phase: int, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
        return self.path / f"fold{int(fold)}" / f"phase{int(phase)}" / f"{kind}.pt"

    def exists(self, fold: int, phase: int, kind: str) -> bool:
        return self.path_for(fold, phase, kind).exists()

    def save(self, fold: int, phase: int, kind: str, state: dict[str, Any]) -> Path:
        return save_checkpoint(state, self.path_for(fold, phase, kind))

    def load(self, fold: int, phase: int, kind: str, map_location: str = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.path_for(fold, phase, kind), map_location)

    def available(self) -> list[tuple[int, int, str]]:
        """(fold, phase, kind) of every checkpoint present, sorted."""
        found = []
        for file in self.path.glob("fold*/phase*/*.pt"):
            fold, phase = file.parent.parent.name[4:], file.parent.name[5:]
            if fold.isdigit() and phase.isdigit() and file.stem in KINDS:
                found.append((int(fold), int(phase), file.stem))
        return sorted(found)

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.path)!r})"


def plain(value: Any) -> Any:
    """Parameters as plain dict/list/str/number/bool/None (OmegaConf containers, tuples → lists)."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def restore(run: PhaseRun, stopper: EarlyStopping, state: dict[str, Any]) -> tuple[list, int]:
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


def save_epoch(
    run: PhaseRun,
    save: Callable[[str, dict[str, Any]], Any],
    state: dict[str, Any],
    judged: nn.Module,
    improved: bool,
) -> None:
    """Save ``best`` (the judged weights) when it improved and ``last`` (everything to resume)."""
    if improved:
        save("best", {**state, "model_state": judged.state_dict()})
    save(
        "last",
        {
            **state,
            "model_state": run.model.state_dict(),
            "optimizer_state": run.optimizer.state_dict(),
            "scheduler_state": run.scheduler.state_dict(),
            "averaged_state": run.averaged.state_dict() if run.averaged is not None else None,
            "loss_state": run.loss_fn.state_dict(),
            "rng_state": rng_state(),
        },
    )


def epoch_state(run: PhaseRun, epoch: int, stopper: EarlyStopping, history: list) -> dict[str, Any]:
    """What every checkpoint of this epoch records besides weights and optimiser state."""
    return {
        "model_config": plain(dataclasses.asdict(run.model.cfg)),
        "fold": run.fold,
        "phase": run.spec.phase,
        "epoch": epoch + 1,
        "global_step": run.global_step,
        "early_stopping": stopper.state_dict(),
        "history": history,
        "params": run.params,
        "world_size": run.steps.groups,
        "seed": run.seed,
    }
