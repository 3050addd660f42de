"""ATFT-GAT-FAN in plain PyTorch (docs/design.md, Model): modules, configuration and training objective."""

from atft_kedro.model.atft_gat_fan import ATFTGATFAN
from atft_kedro.model.config import FANConfig, GATConfig, LossConfig, ModelConfig, SANConfig
from atft_kedro.model.losses import ATFTLoss
from atft_kedro.model.summary import parameter_table

__all__ = [
    "ATFTGATFAN",
    "ATFTLoss",
    "FANConfig",
    "GATConfig",
    "LossConfig",
    "ModelConfig",
    "SANConfig",
    "parameter_table",
]
