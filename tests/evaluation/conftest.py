from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

from atft_kedro.evaluation import plots

DAYS = [date(2023, 1, 2) + timedelta(days=d) for d in range(40)]


def make_predictions(model: str, skill: float, phase: int | None, seed: int = 0) -> pl.DataFrame:
    """Two folds x 60 days x 50 stocks; pred = skill·signal + noise, targets share the signal."""
    rng = np.random.default_rng(seed)
    signal_rng = np.random.default_rng(99)  # the same market for every model
    n_days, n_stocks = 120, 50
    days = [date(2023, 1, 2) + timedelta(days=d) for d in range(n_days)]
    signal = signal_rng.standard_normal((n_days, n_stocks))
    target_1d = 0.01 * (0.2 * signal + signal_rng.standard_normal((n_days, n_stocks)))
    target_5d = 0.02 * (0.2 * signal + signal_rng.standard_normal((n_days, n_stocks)))
    target_5d[-5:] = np.nan  # future unknown at the end
    pred = skill * signal + rng.standard_normal((n_days, n_stocks))
    return pl.DataFrame(
        {
            "Date": [d for d in days for _ in range(n_stocks)],
            "Code": [f"{1300 + i}0" for _ in days for i in range(n_stocks)],
            "model": model,
            "fold": np.repeat([0, 1], n_days // 2 * n_stocks).astype(np.int32),
            "phase": pl.Series([phase] * (n_days * n_stocks), dtype=pl.Int32),
            "pred_1d": pred.ravel(),
            "pred_5d": pred.ravel(),
            "target_1d": target_1d.ravel(),
            "target_5d": target_5d.ravel(),
        }
    )


@pytest.fixture(scope="session")
def predictions_by_model() -> dict[str, pl.DataFrame]:
    return {
        "atft_gat_fan/phase2": make_predictions("atft_gat_fan", 1.0, 2, seed=1),
        "momentum": make_predictions("momentum", 0.2, None, seed=2),
        "oracle": make_predictions("oracle", 10.0, None, seed=3),
    }


def _daily(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "Date": DAYS,
            "ic": rng.normal(0.05, 0.1, 40),
            "rank_ic": rng.normal(0.05, 0.1, 40),
            "gross": rng.normal(0, 0.01, 40),
            "net": rng.normal(0, 0.01, 40),
        }
    )


@pytest.fixture
def figures() -> dict[str, Figure]:
    """One figure of every kind, from small plain inputs."""
    daily = {"model": _daily(0), "momentum": _daily(1)}
    history = pl.DataFrame(
        {
            "epoch": [0, 1, 2],
            "train_loss": [1.0, 0.8, 0.7],
            "val_loss": [1.1, 0.9, 0.85],
            "val_rank_ic": [0.01, 0.03, 0.04],
        }
    )
    return {
        "cumulative long-short return": plots.cumulative_returns(daily),
        "rolling RankIC": plots.rolling_rank_ic(daily, window=10),
        "daily IC": plots.ic_over_time(daily["model"]),
        "deciles": plots.decile_bars({"model": np.linspace(-1e-3, 1e-3, 10)}),
        "FAN": plots.fan_window_weights(
            np.full((3, 3), 1 / 3), ["returns", "vol", "flows"], [5, 10, 20]
        ),
        "SAN": plots.san_slice_weights(np.full((3, 4), 0.25), ["returns", "vol", "flows"]),
        "VSN": plots.variable_importance({"returns_1d": 0.3, "rsi_14": 0.2, "beta_60d": 0.5}),
        "GAT": plots.gat_attention_by_edge_type(np.array([0.3, 0.4]), np.array([0.1, 0.2, 0.1])),
        "graph": plots.graph_statistics(
            pl.DataFrame(
                {
                    "Date": DAYS,
                    "mean_degree": np.arange(40.0),
                    "same_sector_share": np.linspace(0.2, 0.3, 40),
                }
            )
        ),
        "training": plots.training_curves({"phase 0": history, "phase 1": history}),
    }
