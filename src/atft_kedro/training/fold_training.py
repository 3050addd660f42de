"""Phases in order on one walk-forward fold: where each phase starts, and its metrics record.

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

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError, UserError
from atft_kedro.features import registry
from atft_kedro.features.labels import check_label
from atft_kedro.loader.datasets import DayDataset, LoaderConfig, make_day_dataset
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore, load_checkpoint, plain
from atft_kedro.training.distributed import ONE_PROCESS, Rank, barrier
from atft_kedro.training.phases import PhaseConfig, apply_phase, phase_plan
from atft_kedro.training.seeding import seed_everything
from atft_kedro.training.trainer import LoopConfig, PhaseResult, Sharing, train_phase

log = logging.getLogger(__name__)

SWITCH_KEYS = ("use_fan", "use_san", "use_gat")
NON_FEATURE_COLUMNS = ("Date", "Code", "market", "sector33", "sector17", "universe")


class MissingCheckpointError(UserError, FileNotFoundError):
    """The checkpoint a phase starts from has not been trained yet."""


def input_columns(
    columns: Sequence[str], families: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """(feature columns, validity-mask columns) of a features table, in table order; with
    ``families`` (registry families, ``training.inputs``) only theirs.

    Follows docs/contracts.md: identifiers, then features, then `is_*_valid`, then `universe`
    and `target_*`.
    The model's inputs are the features followed by the masks.
    """
    masks = [c for c in columns if c.startswith("is_") and c.endswith("_valid")]
    features = [
        c
        for c in columns
        if c not in NON_FEATURE_COLUMNS and c not in masks and not c.startswith("target_")
    ]
    if families is not None:
        chosen = set(check_families(families))
        features = [c for c in features if registry.family_of(c) in chosen]
        masks = [m for m in masks if registry.mask_family(m) in chosen]
    if not features:
        raise ValueError(f"features: no feature columns among {list(columns)}")
    return features, masks


def check_families(families: Sequence[str]) -> list[str]:
    """``families`` if every one is a registry family; else a one-line ParameterError."""
    unknown = [f for f in families if f not in registry.FAMILIES]
    if unknown or not families:
        raise ParameterError(
            f"training.inputs: unknown or no feature families {unknown or list(families)}; "
            f"choose from {list(registry.FAMILIES)} (or null for every input)"
        )
    return list(families)


def dates_between(calendar: Sequence[dt.date], bounds: Sequence[str | dt.date]) -> list[dt.date]:
    """Trading days of `calendar` within the inclusive range `[start, end]` of a split."""
    lo, hi = (np.datetime64(b, "D") for b in bounds)
    days = np.asarray(calendar, dtype="datetime64[D]")
    return days[(days >= lo) & (days <= hi)].astype(dt.date).tolist()


def phase_seed(seed: int, fold: int, phase: int) -> int:
    """A 31-bit seed derived from (seed, fold, phase)."""
    return int(np.random.SeedSequence([int(seed), int(fold), int(phase)]).generate_state(1)[0] >> 1)


def model_config(
    model_params: dict[str, Any], n_features: int, horizons: Sequence[int]
) -> ModelConfig:
    """ModelConfig from `training.model`, with F from the data and the global horizons."""
    return ModelConfig.from_dict(
        {**model_params, "n_features": n_features, "horizons": list(horizons)}
    )


def architecture(cfg: dict[str, Any]) -> dict[str, Any]:
    """A model config dict without the phase switches (what must match to load weights)."""
    return {k: v for k, v in cfg.items() if k not in SWITCH_KEYS}


def load_weights(model: ATFTGATFAN, state: dict[str, Any], source: str | Path) -> None:
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


def trading_calendar(features_path: str | Path) -> list[dt.date]:
    """The distinct dates of the features table, ascending (reads the Date column only)."""
    dates = pq.read_table(features_path, columns=["Date"]).column("Date")
    return sorted(pc.unique(dates).to_pylist())


def with_label(training: dict[str, Any], label: str) -> dict[str, Any]:
    """The `training` block with the loader's target set to the global `label`, so that the
    model, its early stopping and HPO fit the same label as the baselines and the headline."""
    loader = dict(training.get("loader") or {})
    if "target" in loader:
        raise ParameterError(
            "training.loader.target: the label is the global `label` parameter "
            "(conf/base/parameters.yml), read by training, baselines and evaluation alike; "
            "set it with --params label=..."
        )
    return {**training, "loader": {**loader, "target": check_label(label)}}


@dataclass(frozen=True)
class ScalerConfig:
    """``training.scaler`` (conf/base/parameters_training.yml)."""

    clip: float = 5.0  # robust z-units
    reservoir_size: int = 200_000  # rows in the uniform training sample


def fit_fold_scaler(
    features_path: str | Path,
    fold_split: dict[str, Any],
    calendar: Sequence[dt.date],
    scaler_params: dict[str, Any],
    seed: int,
) -> OnlineRobustScaler:
    """OnlineRobustScaler of the feature columns (not the masks), fitted on the fold's TRAIN dates."""
    features, _ = input_columns(pq.read_schema(features_path).names)
    cfg = from_block(ScalerConfig, scaler_params, "training.scaler")
    scaler = OnlineRobustScaler(
        features, clip=float(cfg.clip), reservoir_size=int(cfg.reservoir_size), seed=int(seed)
    )
    return scaler.fit_from_parquet(features_path, dates_between(calendar, fold_split["train"]))


@dataclass
class FoldData:
    """The datasets of one fold: training days (shuffled per epoch) and validation days."""

    fold: int
    train: DayDataset
    val: DayDataset
    n_features: int


def fold_data(
    features_path: str | Path,
    graph_edges_path: str | Path | None,
    fold_split: dict[str, Any],
    calendar: Sequence[dt.date],
    scaler: OnlineRobustScaler,
    *,
    horizons: Sequence[int],
    seq_len: int,
    loader: dict[str, Any],
    seed: int,
    inputs: Sequence[str] | None = None,
) -> FoldData:
    """Day-batch datasets of a fold's training and validation dates (stocks with a target only),
    reading the model inputs of the families ``inputs`` (``training.inputs``; None: all).

    The training order is shuffled by (seed, fold, epoch); validation is chronological.
    """
    features, masks = input_columns(pq.read_schema(features_path).names, inputs)
    fold = int(fold_split["fold"])
    cfg = LoaderConfig.from_params(loader)
    common: dict[str, Any] = {
        "features_path": features_path,
        "columns": [*features, *masks],
        "horizons": list(horizons),
        "seq_len": int(seq_len),
        "scaler": scaler,
        "graph_edges_path": graph_edges_path,
        "require_target": True,
        "seed": int(np.random.SeedSequence([int(seed), fold]).generate_state(1)[0] >> 1),
        "target": cfg.target,
        "universe": cfg.universe,
        "block_days": int(cfg.block_days),
    }
    implementation = cfg.implementation
    train_dates = dates_between(calendar, fold_split["train"])
    val_dates = dates_between(calendar, fold_split["val"])
    if not train_dates or not val_dates:
        raise ValueError(
            f"splits fold {fold}: {len(train_dates)} training and {len(val_dates)} validation "
            f"trading days in the features table (train {fold_split['train']}, val {fold_split['val']})"
        )
    return FoldData(
        fold=fold,
        train=make_day_dataset(implementation, dates=train_dates, shuffle=True, **common),
        val=make_day_dataset(implementation, dates=val_dates, shuffle=False, **common),
        n_features=len(features) + len(masks),
    )


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


def phase_record(
    fold: int,
    phase: PhaseConfig,
    model: ATFTGATFAN,
    *,
    learns: dict[str, bool],
    loop: LoopConfig,
    store: CheckpointStore,
    started_from: str,
    result: PhaseResult,
) -> dict[str, Any]:
    """The `training_metrics` record of one trained (fold, phase)."""
    return {
        "fold": fold,
        "phase": phase.phase,
        "name": phase.name,
        "started_from": started_from,
        "modules": phase.switches,
        "trainable": sorted(k for k, v in learns.items() if v),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "early_stop_horizon": loop.early_stop_horizon,
        "best_epoch": result.best_epoch,
        "best_val_rank_ic": result.best_value,
        "stopped_early": result.stopped_early,
        "checkpoint": str(store.path_for(fold, phase.phase, "best")),
        "phase_config": plain(dataclasses.asdict(phase)),
        "epochs": result.history,
    }


def train_fold(
    data: FoldData,
    plan: list[PhaseConfig],
    loop: LoopConfig,
    model_params: dict[str, Any],
    store: CheckpointStore,
    *,
    seed: int,
    horizons: Sequence[int],
    threads: int | None = None,
    resume_checkpoint: str | Path | None = None,
    params: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    rank: Rank = ONE_PROCESS,
) -> dict[str, dict[str, Any]]:
    """Run the phases of `plan` on one fold; {"fold{f}_phase{p}": metrics record} per phase.

    The same for one process and for each rank of a DDP job (``rank``; rank 0 saves). A `last`
    checkpoint of an N-rank job resumed on one process continues with N days per step (gradients
    averaged in place), so it ends where the N-rank job would have.
    """
    fold = data.fold
    start = Start.of(resume_checkpoint, fold, plan, rank)
    records: dict[str, dict[str, Any]] = {}
    for index, phase in enumerate(start.plan):
        seeded = phase_seed(seed, fold, phase.phase)
        seed_everything(seeded, threads)
        model = ATFTGATFAN(model_config(model_params, data.n_features, horizons))
        resume_state, started_from = start.weights(model, store, fold, phase, first=index == 0)
        sharing = start.sharing if index == 0 else Sharing(rank)
        learns = apply_phase(model, phase)
        loss_fn = ATFTLoss(LossConfig.from_dict(phase.loss), model.cfg.quantiles)
        result = train_phase(
            model, loss_fn, phase, loop, data.train, data.val,
            save=lambda kind, state, p=phase.phase: store.save(fold, p, kind, state),
            fold=fold, params={**(params or {}), "started_from": started_from},
            resume_state=resume_state, on_epoch_end=on_epoch_end, sharing=sharing,
            seed=seeded if sharing.indexed or rank.world_size > 1 else None,
        )  # fmt: skip
        barrier()  # the next phase starts from this phase's `best`, written by rank 0
        record = phase_record(fold, phase, model, learns=learns, loop=loop, store=store,
                              started_from=started_from, result=result)  # fmt: skip
        if sharing.world_size > 1:
            record["distributed"] = {"world_size": sharing.world_size, "ranks": rank.world_size}
        records[f"fold{fold}_phase{phase.phase}"] = record
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return records


@dataclass(frozen=True)
class Start:
    """Where a fold's training starts: the phases left to run, the checkpoint a `resume_checkpoint`
    supplies, and whether it continues a phase (a `last` of this fold and one of the phases)."""

    plan: list[PhaseConfig]
    checkpoint: dict[str, Any] | None
    path: str | Path | None
    continues: bool
    sharing: Sharing

    @classmethod
    def of(cls, path: str | Path | None, fold: int, plan: list[PhaseConfig], rank: Rank) -> Start:
        state = load_checkpoint(path) if path else None
        continues = (
            state is not None
            and "optimizer_state" in state
            and int(state["fold"]) == fold
            and int(state["phase"]) in [p.phase for p in plan]
        )
        sharing = Sharing(rank)
        if continues:
            plan = [p for p in plan if p.phase >= int(state["phase"])]
            job = int(state.get("world_size", 1))
            if rank.world_size == 1 and job > 1:  # an N-rank `last` on one process: N days a step
                sharing = Sharing(rank, accumulate=job)
        return cls(plan, state, path, continues, sharing)

    def weights(
        self, model: ATFTGATFAN, store: CheckpointStore, fold: int, phase: PhaseConfig, first: bool
    ) -> tuple[dict[str, Any] | None, str]:
        """Load the weights `phase` starts from into `model`; (state to resume or None, source)."""
        if first and self.continues:
            return self.checkpoint, f"{self.path} (resumed)"
        if first and self.checkpoint is not None:
            load_weights(model, self.checkpoint, self.path)
            return None, str(self.path)
        if phase.phase > 0:
            return None, load_previous_phase(model, store, fold, phase.phase)
        return None, "random initialisation (seeded)"


def selected_folds(splits: dict[str, Any], training: dict[str, Any]) -> list[dict[str, Any]]:
    """The folds of `splits` listed in `training.folds` (null: all of them)."""
    folds = {int(f["fold"]): f for f in splits["folds"]}
    wanted = training.get("folds")
    if wanted is None:
        return list(folds.values())
    unknown = [f for f in wanted if int(f) not in folds]
    if unknown:
        raise ValueError(
            f"training.folds: fold(s) {unknown} not in splits.json (have {sorted(folds)})"
        )
    return [folds[int(f)] for f in wanted]


def fit_scalers(
    features_path: str | Path, splits: dict[str, Any], training: dict[str, Any], seed: int
) -> dict[str, Any]:
    """{"fold{f}": OnlineRobustScaler statistics} fitted on each selected fold's training dates."""
    calendar = trading_calendar(features_path)
    return {
        f"fold{f['fold']}": fit_fold_scaler(
            features_path, f, calendar, training.get("scaler") or {}, seed
        ).to_dict()
        for f in selected_folds(splits, training)
    }


@dataclass(frozen=True)
class TrainingRun:
    """One training job: the phases `phase` (0–4 or "all") of every selected fold."""

    training: dict[str, Any]  # the `training` parameter block
    phase: int | str
    seed: int
    horizons: Sequence[int]
    seq_len: int
    resume_checkpoint: str | None = None


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
    training = job.training
    plan, loop = phase_plan(training, job.phase), LoopConfig.from_params(training)
    calendar = trading_calendar(features_path)
    run = plain({"training": training, "phase": job.phase, "seed": job.seed,
                 "horizons": list(job.horizons), "seq_len": job.seq_len,
                 "resume_checkpoint": job.resume_checkpoint,
                 "world_size": rank.world_size})  # fmt: skip
    records: dict[str, dict[str, Any]] = {}
    for fold_split in selected_folds(splits, training):
        key = f"fold{fold_split['fold']}"
        if key not in scalers:
            raise KeyError(f"scalers: no statistics for {key}; run fit_scalers_node first")
        data = fold_data(
            features_path, graph_edges_path, fold_split, calendar,
            OnlineRobustScaler.from_dict(scalers[key]), horizons=job.horizons,
            seq_len=job.seq_len, loader=training.get("loader") or {}, seed=job.seed,
            inputs=training.get("inputs"),
        )  # fmt: skip
        log.info("rank %d/%d, %s: phases %s on %d training / %d validation days",
                 rank.rank, rank.world_size, key, [p.phase for p in plan],
                 len(data.train), len(data.val))  # fmt: skip
        records |= train_fold(
            data, plan, loop, training.get("model") or {}, store,
            seed=job.seed, horizons=job.horizons, threads=training.get("threads"),
            resume_checkpoint=job.resume_checkpoint, params=run, rank=rank,
        )  # fmt: skip
    return records
