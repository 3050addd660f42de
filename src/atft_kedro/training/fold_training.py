"""Phases in order on each walk-forward fold: where each phase starts, and its metrics record.

``train_folds(..., job)`` is the entry point of `kedro run --pipeline training` and of the torchrun
job alike: a ``TrainingRun`` (the parsed ``TrainingConfig``, the phases to run, the seed) goes down
unchanged to ``train_fold`` per fold and to ``trainer.train_phase`` per phase.

Phase 0 starts from a seeded random initialisation. Phase n > 0 starts from phase n−1's `best`
checkpoint of the same fold (weights only; fresh optimiser, scheduler and early stopping), unless a
`resume_checkpoint` is given:

* a `last` checkpoint of a phase in the plan (it holds the optimiser state): that phase of that fold
  continues exactly where it stopped, and the plan's earlier phases are skipped for that fold;
* any other checkpoint: its weights start the plan's first phase, on every fold.

Every phase reseeds from (seed, fold, phase), so `phase=all` and one phase at a time give the same
numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atft_kedro.errors import UserError
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.model import ATFTGATFAN, ATFTLoss, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore, load_checkpoint, plain
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.distributed import ONE_PROCESS, Rank, barrier, resolve_device
from atft_kedro.training.fold_data import FoldData, fold_data, selected_folds, trading_calendar
from atft_kedro.training.fold_workers import train_in_processes, worker_count
from atft_kedro.training.phases import PhaseConfig, apply_phase, parse_phase
from atft_kedro.training.seeding import seed_everything
from atft_kedro.training.steps import StepPlan
from atft_kedro.training.trainer import PhaseResult, train_phase

log = logging.getLogger(__name__)

SWITCH_KEYS = ("use_fan", "use_san", "use_gat")


class MissingCheckpointError(UserError, FileNotFoundError):
    """The checkpoint a phase starts from has not been trained yet."""


@dataclass(frozen=True)
class TrainingRun:
    """One training job: the phases ``phases`` of every selected fold under ``config``."""

    config: TrainingConfig
    phases: tuple[int, ...]  # in order; the `phase` parameter (0–4 or "all") parsed
    seed: int
    seq_len: int  # input window, trading days
    resume_checkpoint: str | None = None

    @classmethod
    def from_params(
        cls,
        training: Mapping[str, Any],
        *,
        label: str,
        phase: int | str,
        seed: int,
        horizons: Sequence[int],
        seq_len: int,
        resume_checkpoint: str | None = None,
    ) -> TrainingRun:
        """The job the parameters describe (the node boundary: the only parsing of them)."""
        config = TrainingConfig.from_params(training, label=label, horizons=horizons)
        return cls(config, tuple(parse_phase(phase)), int(seed), int(seq_len), resume_checkpoint)

    def record(self, rank: Rank) -> dict[str, Any]:
        """What every checkpoint of the job records as its parameters (``params.run``)."""
        return plain(
            {
                "training": asdict(self.config),
                "phases": list(self.phases),
                "seed": self.seed,
                "horizons": list(self.config.model.horizons),
                "seq_len": self.seq_len,
                "resume_checkpoint": self.resume_checkpoint,
                "world_size": rank.world_size,
            }
        )


def train_folds(
    features_path: str | Path,
    graph_edges_path: str | Path | None,
    splits: dict[str, Any],
    scalers: dict[str, Any],
    store: CheckpointStore,
    job: TrainingRun,
    *,
    rank: Rank = ONE_PROCESS,
) -> dict[str, dict[str, Any]]:
    """Train the job on every selected fold; one metrics record per (fold, phase).

    The entry point of both `kedro run --pipeline training` and the torchrun job (`ddp_main`,
    each rank with its `rank`): checkpoints go to `store`, from rank 0 only.
    """
    calendar = trading_calendar(features_path)
    tasks = []
    for fold_split in selected_folds(splits, job.config.folds):
        key = f"fold{fold_split['fold']}"
        if key not in scalers:
            raise KeyError(f"scalers: no statistics for {key}; run fit_scalers_node first")
        tasks.append(FoldTask(features_path, graph_edges_path, fold_split, calendar, scalers[key]))
    cfg = job.config
    workers = worker_count(
        cfg.fold_workers, cfg.threads, len(tasks), resolve_device(cfg.device).type
    )
    if workers > 1 and rank.world_size == 1:
        return train_in_processes(train_task, tasks, job, store, workers)
    records: dict[str, dict[str, Any]] = {}
    for task in tasks:
        records |= train_task(task, job, store, rank=rank)
    return records


@dataclass(frozen=True)
class FoldTask:
    """What training one fold reads: the tables, the fold's split and its scaler statistics."""

    features_path: str | Path
    graph_edges_path: str | Path | None
    split: dict[str, Any]
    calendar: Any  # the features table's trading calendar (fold_data.trading_calendar)
    scaler: dict[str, Any]  # OnlineRobustScaler.to_dict()


def train_task(
    task: FoldTask, job: TrainingRun, store: CheckpointStore, *, rank: Rank = ONE_PROCESS
) -> dict[str, dict[str, Any]]:
    """Load one fold's data and train the job's phases on it (in this process or a fold worker)."""
    data = fold_data(
        task.features_path,
        task.graph_edges_path,
        task.split,
        task.calendar,
        OnlineRobustScaler.from_dict(task.scaler),
        job.config,
        seq_len=job.seq_len,
        seed=job.seed,
    )
    log.info(
        "rank %d/%d, fold%d: phases %s on %d training / %d validation days",
        rank.rank,
        rank.world_size,
        data.fold,
        list(job.phases),
        len(data.train),
        len(data.val),
    )
    return train_fold(data, job, store, rank=rank)


def train_fold(
    data: FoldData,
    job: TrainingRun,
    store: CheckpointStore,
    *,
    rank: Rank = ONE_PROCESS,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the job's phases on one fold; {"fold{f}_phase{p}": metrics record} per phase.

    The same for one process and for each rank of a DDP job (``rank``; rank 0 saves). A `last`
    checkpoint of an N-rank job resumed on one process continues with N groups of days per step
    (gradients averaged in place), so it ends where the N-rank job would have.
    """
    start = Start.of(job, data.fold, rank)
    records: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(start.plan):
        steps = start.steps if index == 0 else StepPlan(rank, 1, job.config.days_per_step)
        record = _train_fold_phase(data, job, spec, store, steps, start, index == 0, on_epoch_end)
        if steps.groups > 1:
            record["distributed"] = {"world_size": steps.groups, "ranks": rank.world_size}
        records[f"fold{data.fold}_phase{spec.phase}"] = record
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return records


def _train_fold_phase(
    data: FoldData,
    job: TrainingRun,
    spec: PhaseConfig,
    store: CheckpointStore,
    steps: StepPlan,
    start: Start,
    first: bool,
    on_epoch_end: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """One phase of one fold, from its seeded start to its metrics record."""
    cfg, fold = job.config, data.fold
    seeded = phase_seed(job.seed, fold, spec.phase)
    seed_everything(seeded, cfg.threads)
    model = ATFTGATFAN(cfg.model.with_inputs(data.n_features))
    resume_state, started_from = start.weights(model, store, fold, spec, first=first)
    learns = apply_phase(model, spec)
    loss_fn = ATFTLoss(spec.loss, model.cfg.quantiles)
    result = train_phase(
        model,
        loss_fn,
        spec,
        cfg,
        data.train,
        data.val,
        steps=steps,
        save=partial(store.save, fold, spec.phase),
        fold=fold,
        params={**job.record(steps.rank), "started_from": started_from},
        resume_state=resume_state,
        on_epoch_end=on_epoch_end,
        seed=seeded if steps.indexed else None,
    )
    barrier()  # the next phase starts from this phase's `best`, written by rank 0
    return phase_record(
        fold,
        spec,
        model,
        learns=learns,
        cfg=cfg,
        store=store,
        started_from=started_from,
        result=result,
    )


def phase_seed(seed: int, fold: int, phase: int) -> int:
    """A 31-bit seed derived from (seed, fold, phase)."""
    return int(np.random.SeedSequence([int(seed), int(fold), int(phase)]).generate_state(1)[0] >> 1)


def phase_record(
    fold: int,
    spec: PhaseConfig,
    model: ATFTGATFAN,
    *,
    learns: dict[str, bool],
    cfg: TrainingConfig,
    store: CheckpointStore,
    started_from: str,
    result: PhaseResult,
) -> dict[str, Any]:
    """The `training_metrics` record of one trained (fold, phase)."""
    return {
        "fold": fold,
        "phase": spec.phase,
        "name": spec.name,
        "started_from": started_from,
        "modules": spec.switches,
        "trainable": sorted(k for k, v in learns.items() if v),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "early_stop_horizon": cfg.early_stop_horizon,
        "best_epoch": result.best_epoch,
        "best_val_rank_ic": result.best_value,
        "stopped_early": result.stopped_early,
        "checkpoint": str(store.path_for(fold, spec.phase, "best")),
        "phase_config": plain(asdict(spec)),
        "epochs": result.history,
    }


@dataclass(frozen=True)
class Start:
    """Where a fold's training starts: the phases left to run, the checkpoint a `resume_checkpoint`
    supplies, whether it continues a phase (a `last` of this fold and one of the phases), and the
    step plan of the first phase."""

    plan: list[PhaseConfig]
    checkpoint: dict[str, Any] | None
    path: str | Path | None
    continues: bool
    steps: StepPlan

    @classmethod
    def of(cls, job: TrainingRun, fold: int, rank: Rank) -> Start:
        path = job.resume_checkpoint
        state = load_checkpoint(path) if path else None
        phases = list(job.phases)
        continues = (
            state is not None
            and "optimizer_state" in state
            and int(state["fold"]) == fold
            and int(state["phase"]) in phases
        )
        accumulate = 1
        if continues and state is not None:
            phases = [p for p in phases if p >= int(state["phase"])]
            groups = int(state.get("world_size", 1))
            if rank.world_size == 1 and groups > 1:  # an N-rank `last` on one process
                accumulate = groups
        steps = StepPlan(rank, accumulate, job.config.days_per_step)
        return cls(job.config.plan(phases), state, path, continues, steps)

    def weights(
        self, model: ATFTGATFAN, store: CheckpointStore, fold: int, spec: PhaseConfig, first: bool
    ) -> tuple[dict[str, Any] | None, str]:
        """Load the weights phase ``spec`` starts from into `model`; (state to resume or None,
        where they came from)."""
        if first and self.continues:
            return self.checkpoint, f"{self.path} (resumed)"
        if first and self.checkpoint is not None:
            load_weights(model, self.checkpoint, self.path)
            return None, str(self.path)
        if spec.phase > 0:
            return None, load_previous_phase(model, store, fold, spec.phase)
        return None, "random initialisation (seeded)"


def load_previous_phase(model: ATFTGATFAN, store: CheckpointStore, fold: int, phase: int) -> str:
    """Load phase `phase − 1`'s best weights of `fold` into `model`; returns the checkpoint path."""
    previous = store.path_for(fold, phase - 1, "best")
    if not previous.exists():
        raise MissingCheckpointError(
            f"phase {phase} starts from phase {phase - 1}'s best checkpoint ({previous}), which "
            f"does not exist: run `kedro run --pipeline training --params phase={phase - 1}` first"
        )
    load_weights(model, load_checkpoint(previous), previous)
    return str(previous)


def architecture(cfg: dict[str, Any]) -> dict[str, Any]:
    """A model config dict without the phase switches (what must match to load weights)."""
    return {k: v for k, v in cfg.items() if k not in SWITCH_KEYS}


def load_weights(model: ATFTGATFAN, state: dict[str, Any], source: str | Path | None) -> None:
    """Load a checkpoint's weights after checking its architecture matches the model's."""
    want = architecture(ModelConfig.from_dict(state["model_config"]).__dict__)
    have = architecture(model.cfg.__dict__)
    differ = [k for k in have if have[k] != want.get(k)]
    if differ:
        k = differ[0]
        raise ValueError(
            f"checkpoint {source} was trained with {k}={want.get(k)!r}, the parameters say "
            f"{k}={have[k]!r}: retrain the earlier phases or restore training.model"
        )
    missing, unexpected = model.load_state_dict(state["model_state"], strict=False)
    if missing or unexpected:
        names = ", ".join([*missing[:3], *unexpected[:3]])
        raise ValueError(
            f"checkpoint {source} does not fit this model ({len(missing)} missing, "
            f"{len(unexpected)} unexpected weights, e.g. {names}): it was written by another "
            "version of the model; retrain the earlier phases"
        )
