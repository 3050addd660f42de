"""Configuration of the ATFT-GAT-FAN model and its loss, one dataclass per concern.

`ModelConfig.from_dict` / `LossConfig.from_dict` build them from the nested dictionaries Kedro
reads from `conf/` (``atft_kedro.config.from_block``); an unknown key is an error rather than a
silently ignored setting. Inside the `training` block they are built with the rest of it
(``training.config.TrainingConfig``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from atft_kedro.config import from_block

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)


@dataclass
class FANConfig:
    """Frequency adaptive normalisation of the input sequence.

    mode: "multi_window" (trailing mean/std per window, softmax-weighted over windows) or
    "fourier" (remove the top-k amplitude frequencies, pass the removed part as extra channels).
    """

    mode: Literal["multi_window", "fourier"] = "multi_window"
    windows: tuple[int, ...] = (5, 10, 20)  # trailing windows, trading days
    mlp_hidden: int = 8  # hidden width of the window-weight MLP (runs on every [n, f] at day t)
    top_k: int = 2  # fourier: frequency components removed per series
    eps: float = 1e-5  # added to the variance before the square root
    sigma_floor: float = 1e-3  # lower bound of sigma (a constant series never divides by ~0)
    clamp: float = 10.0  # |z| bound after normalisation

    def __post_init__(self) -> None:
        if self.mode not in ("multi_window", "fourier"):
            raise ValueError(
                f"FANConfig.mode must be 'multi_window' or 'fourier', got {self.mode!r}"
            )
        if not self.windows or min(self.windows) < 1:
            raise ValueError(f"FANConfig.windows must be positive integers, got {self.windows}")
        if self.top_k < 1:
            raise ValueError(f"FANConfig.top_k must be >= 1, got {self.top_k}")


@dataclass
class SANConfig:
    """Slice adaptive normalisation: K overlapping slices of the window."""

    n_slices: int = 4
    overlap: float = 0.5  # fraction of a slice shared with its neighbour
    eps: float = 1e-5
    sigma_floor: float = 1e-3
    clamp: float = 10.0

    def __post_init__(self) -> None:
        if self.n_slices < 1:
            raise ValueError(f"SANConfig.n_slices must be >= 1, got {self.n_slices}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"SANConfig.overlap must be in [0, 1), got {self.overlap}")


@dataclass
class GATConfig:
    """Two (or more) GATv2 layers over the day's stock graph."""

    n_layers: int = 2
    heads: int = 4
    edge_dim: int = 3  # [corr, same_market, same_sector33]
    attn_dropout: float = 0.1  # dropout on attention coefficients
    edge_dropout: float = 0.1  # fraction of edges dropped per training step
    peer_inputs: bool = True  # add the corr-weighted mean of the neighbours' latest inputs

    def __post_init__(self) -> None:
        if self.n_layers < 1:
            raise ValueError(f"GATConfig.n_layers must be >= 1, got {self.n_layers}")


@dataclass
class ModelConfig:
    """Everything that shapes the network. `n_features` is the model's F (checked on every batch):
    None in the `training.model` block, set from the fold's inputs (`with_inputs`)."""

    n_features: int | None = None
    hidden: int = 64
    horizons: tuple[int, ...] = DEFAULT_HORIZONS  # trading days
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES  # must contain 0.5 (the point prediction)
    n_markets: int = 3  # vocabulary size without the 0 = unknown slot
    n_sector33: int = 33
    lstm_layers: int = 1
    attn_heads: int = 4
    dropout: float = 0.2
    use_fan: bool = True
    use_san: bool = True
    use_gat: bool = True
    linear_skip: bool = True  # a linear map of the day's inputs beside the network (heads)
    fan: FANConfig = field(default_factory=FANConfig)
    san: SANConfig = field(default_factory=SANConfig)
    gat: GATConfig = field(default_factory=GATConfig)

    def __post_init__(self) -> None:
        self.horizons = tuple(int(h) for h in self.horizons)
        self.quantiles = tuple(float(q) for q in self.quantiles)
        if self.n_features is not None and self.n_features < 1:
            raise ValueError(f"ModelConfig.n_features must be >= 1, got {self.n_features}")
        if 0.5 not in self.quantiles or list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError(
                f"ModelConfig.quantiles must be strictly increasing and contain 0.5, "
                f"got {self.quantiles}"
            )
        if self.hidden % self.attn_heads or self.hidden % self.gat.heads:
            raise ValueError(
                f"ModelConfig.hidden={self.hidden} must be divisible by attn_heads="
                f"{self.attn_heads} and gat.heads={self.gat.heads}"
            )

    def with_inputs(self, n_features: int) -> ModelConfig:
        """This configuration for inputs of width F = ``n_features``."""
        return dataclasses.replace(self, n_features=int(n_features))

    @property
    def vsn_input_width(self) -> int:
        """Width entering variable selection: F, or 2F when FAN runs in Fourier mode."""
        if self.n_features is None:
            raise ValueError("ModelConfig.n_features is not set: use cfg.with_inputs(F)")
        return 2 * self.n_features if self.fan.mode == "fourier" else self.n_features

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        return from_block(cls, values, "ModelConfig")


@dataclass
class LossConfig:
    """Weights of the loss terms; a weight of 0 skips the term entirely (it is not computed)."""

    pinball_weight: float = 1.0
    rank_weight: float = 0.1
    sharpe_weight: float = 0.0
    aux_weight: float = 0.01  # FAN/SAN regulariser returned by the model as `aux_loss`
    horizon_weights: dict[int, float] | None = None  # None: every horizon weighs 1
    rank_temperature: float = 1.0  # ListNet softmax temperature on z-scored scores
    sharpe_horizon: int | None = None  # None: the shortest horizon in the output
    sharpe_ema_decay: float = 0.9  # EMA decay of the portfolio return moments across days
    # What the pinball, mse and rank terms fit: the raw forward return, or its per-day
    # cross-sectional score (rank_gauss: normal quantile of the rank; zscore: clipped z-score).
    # The Sharpe term always uses raw returns (a portfolio return is in return units).
    target: Literal["raw", "rank_gauss", "zscore"] = "raw"
    mse_weight: float = 0.0  # squared error of the point prediction on the (transformed) target
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.target not in ("raw", "rank_gauss", "zscore"):
            raise ValueError(
                f"LossConfig.target must be raw, rank_gauss or zscore, got {self.target!r}"
            )
        if self.horizon_weights is not None:
            self.horizon_weights = {int(h): float(w) for h, w in self.horizon_weights.items()}
        if not 0.0 <= self.sharpe_ema_decay < 1.0:
            raise ValueError(
                f"LossConfig.sharpe_ema_decay must be in [0, 1), got {self.sharpe_ema_decay}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LossConfig:
        return from_block(cls, values, "LossConfig")
