"""atft_kedro: ATFT-GAT-FAN return prediction for Japanese equities as a Kedro project."""

__version__ = "0.1.0"
