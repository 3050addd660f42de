"""The `training` block (conf/base/parameters_training.yml) as one typed object, parsed once.

``TrainingConfig.from_params(block, label=..., horizons=...)`` is the only place that reads the
block as a dictionary: the training node, the torchrun entry point and each HPO trial call it, and
every training function below them takes the dataclasses. Its shape mirrors the block key for key:

    TrainingConfig
      folds, device, threads, fold_workers, progress_bar, max_train_days_per_epoch, inputs,
      days_per_step, grad_clip, early_stop_horizon, min_delta, min_stocks_per_day,
      max_nonfinite_share
      loader: LoaderConfig          implementation, num_workers, block_days, universe,
                                    target (= the global `label`, injected here)
      scaler: ScalerConfig          clip, reservoir_size
      model: ModelConfig            (fan, san, gat nested; horizons = the global `horizons`)
      optimizer: OptimizerConfig    weight_decay, betas
      schedule: ScheduleConfig      warmup_days, min_lr_ratio
      phases: {int: PhaseConfig}    (loss: LossConfig, augmentation, averaging nested)

Field defaults equal conf/base (``tests/test_defaults.py``) except ``phases``, which only the conf
holds. An unknown key anywhere is a one-line ParameterError naming its block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError
from atft_kedro.features import registry
from atft_kedro.features.labels import check_label
from atft_kedro.loader.datasets import LoaderConfig
from atft_kedro.model.config import ModelConfig
from atft_kedro.training.phases import PhaseConfig

DEFAULT_INPUTS = ("momentum", "earnings", "flows", "market")


@dataclass(frozen=True)
class OptimizerConfig:
    """``training.optimizer``: AdamW."""

    weight_decay: float = 0.01  # decoupled weight decay (weights only, not biases/norms)
    betas: tuple[float, float] = (0.9, 0.999)  # moment decay rates


@dataclass(frozen=True)
class ScheduleConfig:
    """``training.schedule``: linear warm-up, then cosine decay over the phase's steps."""

    RENAMED: ClassVar[dict[str, str]] = {"warmup_steps": "warmup_days"}  # until the next release

    warmup_days: int = 50  # trading days of linear warm-up, each phase (StepPlan: in steps)
    min_lr_ratio: float = 0.05  # cosine decays the lr to this fraction of its peak


@dataclass(frozen=True)
class ScalerConfig:
    """``training.scaler``: the robust scaler fitted on a fold's training dates."""

    clip: float = 5.0  # robust z-units
    reservoir_size: int = 200_000  # rows in the uniform training sample


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the `training` block configures (units in parameters_training.yml)."""

    folds: tuple[int, ...] | None = None  # walk-forward folds to train; None = every fold
    device: str = "auto"  # auto | cpu | cuda; mixed precision (bf16) on cuda only
    threads: int | None = None  # torch CPU threads; None = training.seeding.default_threads()
    fold_workers: int = 2  # folds trained at once, one process each, sharing `threads` (CPU)
    progress_bar: bool = True  # tqdm per epoch (on a terminal only)
    max_train_days_per_epoch: int | None = 150  # random subset of training days per epoch
    inputs: tuple[str, ...] | None = DEFAULT_INPUTS  # feature families read; None = every input
    days_per_step: int = 1  # trading days batched in one forward pass (see StepPlan)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    scaler: ScalerConfig = field(default_factory=ScalerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    grad_clip: float = 1.0  # max global L2 norm of the gradient
    early_stop_horizon: int = 1  # horizon (trading days) whose mean val RankIC stops training
    min_delta: float = 0.0  # RankIC improvement that counts as better
    min_stocks_per_day: int = 10  # days with fewer valid targets are left out of IC / RankIC
    max_nonfinite_share: float = 0.05  # share of an epoch's steps that may be skipped
    phases: dict[int, PhaseConfig] = field(default_factory=dict)  # phase → its settings

    def __post_init__(self) -> None:
        for name in ("days_per_step", "fold_workers"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(
                    f"training.{name} must be an integer ≥ 1, got {getattr(self, name)!r}"
                )
        if self.max_train_days_per_epoch is not None and self.max_train_days_per_epoch < 1:
            raise ParameterError(
                "training.max_train_days_per_epoch must be ≥ 1 or null, "
                f"got {self.max_train_days_per_epoch!r}"
            )
        if self.inputs is not None:
            check_families(self.inputs)
        if self.early_stop_horizon not in self.model.horizons:
            raise ParameterError(
                f"training.early_stop_horizon={self.early_stop_horizon} is not "
                f"a model horizon {list(self.model.horizons)}"
            )

    @classmethod
    def from_params(
        cls,
        block: Mapping[str, Any] | None,
        *,
        label: str | None = None,
        horizons: Sequence[int] | None = None,
    ) -> TrainingConfig:
        """The `training` block with the loader's target set to the global ``label`` (so the
        model, its early stopping and HPO fit the label the baselines and the headline use) and
        the model's horizons to the global ``horizons`` (None: the dataclass defaults)."""
        block = dict(block or {})
        loader = dict(block.get("loader") or {})
        if "target" in loader:
            raise ParameterError(
                "training.loader.target: the label is the global `label` parameter "
                "(conf/base/parameters.yml), read by training, baselines and evaluation alike; "
                "set it with --params label=..."
            )
        if label is not None:
            loader["target"] = check_label(label)
        model = dict(block.get("model") or {})
        if horizons is not None:
            model["horizons"] = [int(h) for h in horizons]
        return from_block(cls, {**block, "loader": loader, "model": model}, "training")

    @property
    def label(self) -> str:
        """The label the model fits (the loader's target view)."""
        return self.loader.target

    def plan(self, phases: Sequence[int]) -> list[PhaseConfig]:
        """The settings of ``phases``, in order; a phase without a block is a KeyError."""
        missing = [p for p in phases if p not in self.phases]
        if missing:
            raise KeyError(
                f"training.phases has no block for phase {missing[0]} (have {sorted(self.phases)})"
            )
        return [self.phases[p] for p in phases]


def check_families(families: Sequence[str]) -> list[str]:
    """``families`` if every one is a registry family; else a one-line ParameterError."""
    unknown = [f for f in families if f not in registry.FAMILIES]
    if unknown or not families:
        raise ParameterError(
            f"training.inputs: unknown or no feature families {unknown or list(families)}; "
            f"choose from {list(registry.FAMILIES)} (or null for every input)"
        )
    return list(families)
