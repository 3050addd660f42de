"""`torchrun` entry point: the training pipeline's phases under DistributedDataParallel.

    torchrun --standalone --nproc_per_node=2 -m atft_kedro.pipelines.training.ddp_main --env tiny --phase 0

Every rank opens the Kedro project (parameters and catalog of `--env`) and calls the same fold
orchestration as `kedro run --pipeline training` (`fold_training.train_folds`) with its rank: the
one training loop (`trainer.train_phase`) shares each step's days across the ranks and DDP averages
their gradients. Rank 0 alone fits and saves `scalers`, writes the `checkpoints` (same store and
paths) and saves the `training_metrics` records, so the reporting pipeline reads a distributed run
exactly like a single-process one.

One optimiser step averages the groups of days of the N ranks (`training.steps.StepPlan`: N ×
`training.days_per_step` days), so an epoch of D days takes D / N steps, and phase 4's augmentation
noise is drawn per (seed, epoch, day). A `last.pt` of an N-rank job resumed by `kedro run` on one
process continues with N groups per step. The `training` block is parsed here, as in the node
(`TrainingRun.from_params`). Kedro is imported inside `main` only: this module is the torchrun
adapter, like a pipeline's nodes.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch.distributed as dist
from omegaconf import OmegaConf

from atft_kedro.loader.day_graph import edges_file
from atft_kedro.training.checkpoints import plain
from atft_kedro.training.distributed import Rank, barrier, init_from_env
from atft_kedro.training.fold_data import fit_scalers
from atft_kedro.training.fold_training import TrainingRun, train_folds

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m atft_kedro.pipelines.training.ddp_main",
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
    if not items:
        return {}
    # a dotlist always gives a mapping (OmegaConf types to_container as any container)
    return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.from_dotlist(items)))


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Open the project, train the phase plan on every selected fold, return the records."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    args = parse_args(argv)
    project = args.project_path.resolve()
    bootstrap_project(project)
    with KedroSession.create(
        project, env=args.env, runtime_params=runtime_params(args.params), save_on_close=False
    ) as session:
        context = session.load_context()  # type: ignore[attr-defined]  # kedro: __enter__ is not typed Self
        catalog, params = context.catalog, context.params
        job = TrainingRun.from_params(
            plain(params["training"]),
            label=params["label"],
            phase=args.phase if args.phase is not None else params.get("phase", "all"),
            seed=params["seed"],
            horizons=params["horizons"],
            seq_len=params["seq_len"],
            resume_checkpoint=params.get("resume_checkpoint"),
        )
        implementation = job.config.loader.implementation
        if implementation != "in_memory":
            raise ValueError(
                f"training.loader.implementation must be in_memory for DDP, got {implementation!r}"
            )
        rank, _ = init_from_env(job.config.device)
        try:
            return _train(catalog, job, rank)
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


def _train(catalog: Any, job: TrainingRun, rank: Rank) -> dict[str, dict[str, Any]]:
    """This rank's share of the job: rank 0 fits and saves the scalers, every rank trains, rank 0
    saves the metrics records."""
    features, splits = catalog.load("model_input"), catalog.load("splits")
    if rank.is_main:
        catalog.save("scalers", fit_scalers(features.path, splits, job.config, job.seed))
    barrier()
    with tempfile.TemporaryDirectory(prefix="atft_ddp_graph_") as folder:
        edges = edges_file(catalog.load("graph_edges"), Path(folder))
        records = train_folds(
            features.path,
            edges,
            splits,
            catalog.load("scalers"),
            catalog.load("checkpoints"),
            job,
            rank=rank,
        )
    if rank.is_main:
        catalog.save("training_metrics", records)
    return records


if __name__ == "__main__":
    main()
