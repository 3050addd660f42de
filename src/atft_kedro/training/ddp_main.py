"""`torchrun` entry point: the training pipeline's phases under DistributedDataParallel.

    torchrun --standalone --nproc_per_node=2 -m atft_kedro.training.ddp_main --env tiny --phase 0

Every rank opens the Kedro project (parameters and catalog of `--env`), builds the same fold data
and trains each phase of the plan with `train_phase_ddp` (ranks take disjoint days, gradients are
averaged). Rank 0 alone fits and saves `scalers`, writes the `checkpoints` (same store and paths as
`kedro run --pipeline training`) and saves one `training_metrics` record per (fold, phase), so the
reporting pipeline reads a distributed run exactly like a single-process one.

Differences from the single-process node: one optimiser step averages N days (N = world size), so
an epoch of D days takes D / N steps; phase 4's augmentation noise is drawn per (seed, epoch, day)
rather than from the global stream; `resume_checkpoint` supplies starting weights only (a phase's
optimiser state is not continued). This is the one module of
`atft_kedro.training` that touches Kedro, and only inside `main`.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig
from atft_kedro.training.checkpoints import CheckpointStore, load_checkpoint, plain
from atft_kedro.training.distributed import Rank, init_from_env, train_phase_ddp
from atft_kedro.training.fold_training import (
    FoldData,
    fold_data,
    load_previous_phase,
    load_weights,
    model_config,
    phase_record,
    phase_seed,
    trading_calendar,
)
from atft_kedro.training.phases import PhaseConfig, apply_phase, phase_plan
from atft_kedro.training.seeding import seed_everything
from atft_kedro.training.trainer import LoopConfig

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m atft_kedro.training.ddp_main",
        description="Train phases of the training pipeline with DistributedDataParallel.",
    )
    parser.add_argument("--env", default=None, help="Kedro environment (as `kedro run --env`)")
    parser.add_argument("--phase", default=None, help="0-4 or all (default: params `phase`)")
    parser.add_argument(
        "--params",
        default="",
        help='runtime parameters as for `kedro run --params`, e.g. "seed=7,training.folds=[0]"',
    )
    parser.add_argument(
        "--project-path", type=Path, default=Path.cwd(), help="the Kedro project (default: cwd)"
    )
    return parser.parse_args(argv)


def runtime_params(text: str) -> dict[str, Any]:
    """`"a=1,b.c=[0,1]"` → `{"a": 1, "b": {"c": [0, 1]}}` (commas inside brackets are kept)."""
    items = [i.strip() for i in re.split(r",(?![^\[\]{}]*[\]}])", text) if i.strip()]
    bad = [i for i in items if "=" not in i or not i.split("=", 1)[0].strip()]
    if bad:
        raise ValueError(f"--params: item {bad[0]!r} must be KEY=VALUE (e.g. seed=7)")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items)) if items else {}


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def start_weights(
    model: ATFTGATFAN,
    store: CheckpointStore,
    fold: int,
    phase: PhaseConfig,
    first: bool,
    resume_checkpoint: str | None,
) -> str:
    """Load the weights phase `phase` starts from (as `train_fold` does); returns their source."""
    if first and resume_checkpoint:
        state = load_checkpoint(resume_checkpoint)
        if "optimizer_state" in state:
            log.warning(
                "resume_checkpoint %s: DDP takes its weights only (the phase restarts at epoch 0)",
                resume_checkpoint,
            )
        load_weights(model, state, resume_checkpoint)
        return str(resume_checkpoint)
    if phase.phase == 0:
        return "random initialisation (seeded)"
    return load_previous_phase(model, store, fold, phase.phase)


def train_fold_ddp(
    data: FoldData,
    plan: list[PhaseConfig],
    loop: LoopConfig,
    training: dict[str, Any],
    store: CheckpointStore,
    rank: Rank,
    device: torch.device,
    *,
    seed: int,
    horizons: Sequence[int],
    resume_checkpoint: str | None,
    run: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """`train_fold` under DDP: the phases of `plan` on one fold; rank 0's metrics records."""
    records: dict[str, dict[str, Any]] = {}
    for index, phase in enumerate(plan):
        seeded = phase_seed(seed, data.fold, phase.phase)
        seed_everything(seeded, training.get("threads"))
        model = ATFTGATFAN(model_config(training.get("model") or {}, data.n_features, horizons))
        started_from = start_weights(model, store, data.fold, phase, index == 0, resume_checkpoint)
        learns = apply_phase(model, phase)
        loss_fn = ATFTLoss(LossConfig.from_dict(phase.loss), model.cfg.quantiles)
        extra = {"fold": data.fold, "params": {**run, "started_from": started_from}}
        result = train_phase_ddp(
            model, loss_fn, phase, loop, data.train, data.val, rank, device, seed=seeded,
            save=lambda kind, state, p=phase.phase, x=extra: store.save(data.fold, p, kind, state | x),
        )  # fmt: skip
        _barrier()  # the next phase starts from this phase's `best`, written by rank 0
        record = phase_record(
            data.fold, phase, model, learns, loop, store, started_from, result.history,
            result.best_epoch, result.best_value, len(result.history) < phase.epochs,
        )  # fmt: skip
        record["distributed"] = {"world_size": rank.world_size, "device": device.type}
        records[f"fold{data.fold}_phase{phase.phase}"] = record
    return records


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Open the project, train the phase plan on every selected fold, return the records."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from atft_kedro.pipelines.training.nodes import fit_scalers_node, selected_folds
    from atft_kedro.training.inference import edges_file

    args = parse_args(argv)
    project = args.project_path.resolve()
    bootstrap_project(project)
    with KedroSession.create(
        project, env=args.env, runtime_params=runtime_params(args.params), save_on_close=False
    ) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        training = plain(params["training"])
        loader = training.get("loader") or {}
        if loader.get("implementation", "streaming") != "in_memory":
            raise ValueError(
                "training.loader.implementation must be in_memory for DDP, got "
                f"{loader.get('implementation', 'streaming')!r}"
            )
        rank, device = init_from_env(training.get("device", "auto"))
        try:
            phase = args.phase if args.phase is not None else params.get("phase", "all")
            seed, seq_len = int(params["seed"]), int(params["seq_len"])
            horizons = list(params["horizons"])
            features, splits = catalog.load("model_input"), catalog.load("splits")
            if rank.is_main:
                catalog.save("scalers", fit_scalers_node(features, splits, training, seed))
            _barrier()
            scalers, store = catalog.load("scalers"), catalog.load("checkpoints")
            plan, loop = phase_plan(training, phase), LoopConfig.from_params(training)
            calendar = trading_calendar(features.path)
            run = plain({"training": training, "phase": phase, "seed": seed, "horizons": horizons,
                         "seq_len": seq_len, "world_size": rank.world_size})  # fmt: skip
            records: dict[str, dict[str, Any]] = {}
            with tempfile.TemporaryDirectory(prefix="atft_ddp_graph_") as folder:
                edges = edges_file(catalog.load("graph_edges"), Path(folder))
                for fold_split in selected_folds(splits, training):
                    key = f"fold{fold_split['fold']}"
                    data = fold_data(
                        features.path, edges, fold_split, calendar,
                        OnlineRobustScaler.from_dict(scalers[key]), horizons=horizons,
                        seq_len=seq_len, loader=loader, seed=seed,
                    )  # fmt: skip
                    log.info("rank %d/%d, %s: phases %s on %d training / %d validation days",
                             rank.rank, rank.world_size, key, [p.phase for p in plan],
                             len(data.train), len(data.val))  # fmt: skip
                    records |= train_fold_ddp(
                        data, plan, loop, training, store, rank, device, seed=seed,
                        horizons=horizons, resume_checkpoint=params.get("resume_checkpoint"),
                        run=run,
                    )  # fmt: skip
            if rank.is_main:
                catalog.save("training_metrics", records)
            return records
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    main()
