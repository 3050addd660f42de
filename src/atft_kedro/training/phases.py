"""Training phases 0–4 (docs/design.md, Phases): which modules run, which learn, and how.

| phase | modules                      | what changes                                  |
|-------|------------------------------|-----------------------------------------------|
| 0     | VSN + temporal encoder + heads | strong reference                            |
| 1     | + FAN + SAN                  | input non-stationarity                        |
| 2     | + GAT                        | cross-section                                 |
| 3     | all; rank/Sharpe weights up  | objective alignment                           |
| 4     | all; augmentation + SWA/EMA  | robustness                                    |

A phase is an int (0–4); its settings are a `PhaseConfig` (called `spec` where it is used), built
from one block of `training.phases` in `conf/base/parameters_training.yml` with the rest of the
`training` block (`training.config.TrainingConfig`). `parse_phase` turns the `phase` parameter
(0–4 or "all") into the phases to run. `apply_phase(model, spec)` switches the model's optional
modules (FAN, SAN, GAT) on or off for the forward pass and freezes every sub-module that is not
trainable in this phase (`requires_grad = False`); modules switched off are always frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from atft_kedro.config import KEY, from_block
from atft_kedro.model.config import LossConfig

if TYPE_CHECKING:
    from atft_kedro.model.atft_gat_fan import ATFTGATFAN

PHASES: tuple[int, ...] = (0, 1, 2, 3, 4)
SWITCHES: dict[str, str] = {"fan": "use_fan", "san": "use_san", "gat": "use_gat"}
"""Optional sub-module name → the ModelConfig flag that puts it in the forward pass."""


@dataclass
class AugmentationConfig:
    """Input augmentation during training (phase 4); 0 switches a transform off."""

    feature_noise_std: float = 0.0  # Gaussian noise on scaled inputs, robust-z units
    frequency_dropout_prob: float = 0.0  # chance that each rFFT bin (but the mean) is zeroed
    frequency_dropout_batch_prob: float = 1.0  # share of day batches that get frequency dropout

    def __post_init__(self) -> None:
        if (
            self.feature_noise_std < 0
            or not 0 <= self.frequency_dropout_prob < 1
            or not 0 <= self.frequency_dropout_batch_prob <= 1
        ):
            raise ValueError(
                "augmentation: feature_noise_std must be >= 0, frequency_dropout_prob in [0, 1) and "
                f"frequency_dropout_batch_prob in [0, 1], got {self.feature_noise_std}, "
                f"{self.frequency_dropout_prob}, {self.frequency_dropout_batch_prob}"
            )

    @property
    def enabled(self) -> bool:
        return self.feature_noise_std > 0 or self.frequency_dropout_prob > 0


@dataclass
class AveragingConfig:
    """Weight averaging (phase 4): SWA (equal weights) or EMA of the weights after each step."""

    kind: Literal["none", "swa", "ema"] = "none"
    ema_decay: float = 0.999  # per training day (a step of D days decays by ema_decay ** D)
    start_epoch: int = 0  # first epoch (0-based) whose steps enter the average

    def __post_init__(self) -> None:
        if self.kind not in ("none", "swa", "ema"):
            raise ValueError(f"averaging.kind must be none, swa or ema, got {self.kind!r}")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


@dataclass
class PhaseConfig:
    """Everything that differs between phases (one block of `training.phases`)."""

    phase: int = field(metadata=KEY)  # the block's key in `training.phases`
    name: str = ""
    use_fan: bool = False
    use_san: bool = False
    use_gat: bool = False
    trainable: tuple[str, ...] = ("all",)  # sub-module names, or "all" (every active module)
    epochs: int = 1
    lr: float = 1e-3  # peak learning rate after warm-up
    lr_multipliers: dict[str, float] = field(default_factory=dict)  # sub-module → × lr
    patience: int = 3  # epochs without a better val RankIC before stopping
    loss: LossConfig = field(default_factory=LossConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase}")
        if isinstance(self.trainable, str):
            self.trainable = (self.trainable,)
        self.trainable = tuple(self.trainable)
        if self.epochs < 1 or self.lr <= 0 or self.patience < 1:
            raise ValueError(
                f"phase {self.phase}: epochs and patience must be >= 1 and lr > 0, "
                f"got epochs={self.epochs}, patience={self.patience}, lr={self.lr}"
            )

    @property
    def switches(self) -> dict[str, bool]:
        return {"use_fan": self.use_fan, "use_san": self.use_san, "use_gat": self.use_gat}

    @classmethod
    def from_dict(cls, phase: int, values: dict[str, Any]) -> PhaseConfig:
        """The block of phase ``phase`` (as ``training.phases.<phase>``)."""
        return from_block(cls, values, f"training.phases.{phase}", phase)


def parse_phase(phase: int | str) -> list[int]:
    """`"all"` → [0, 1, 2, 3, 4]; `3` or `"3"` → [3]; anything else is a one-line error."""
    text = str(phase).strip().lower()
    if text == "all":
        return list(PHASES)
    if text.isdigit() and int(text) in PHASES:
        return [int(text)]
    raise ValueError(f"phase must be 0, 1, 2, 3, 4 or all, got {phase!r} (e.g. --params phase=3)")


def apply_phase(model: ATFTGATFAN, spec: PhaseConfig) -> dict[str, bool]:
    """Switch FAN/SAN/GAT for the forward pass and freeze what does not learn in this phase.

    Returns {sub-module name: trainable}. A module switched off is frozen whatever `trainable` says.
    """
    model.set_modules(**spec.switches)
    children = dict(model.named_children())
    wanted = set(children) if "all" in spec.trainable else set(spec.trainable)
    unknown = sorted(wanted - set(children))
    if unknown:
        raise ValueError(
            f"phase {spec.phase}: trainable names {unknown} are not sub-modules of the model "
            f"(have {sorted(children)})"
        )
    off = {name for name, flag in SWITCHES.items() if not spec.switches[flag]}
    learns = {}
    for name, module in children.items():
        learns[name] = name in wanted and name not in off
        for p in module.parameters():
            p.requires_grad_(learns[name])
    return learns
