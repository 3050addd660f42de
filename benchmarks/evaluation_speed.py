"""Speed of the evaluation layer on a realistic panel (500 days x 2000 stocks).

Compares the vectorised per-day IC/RankIC (one polars group_by) with a per-day scipy loop measured
in the same run, and times the full `evaluate` (IC, deciles, two backtests, bootstrap CI95) for one
model at h ∈ {1, 5}.  Run: .venv/bin/python benchmarks/evaluation_speed.py
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from atft_kedro.evaluation.evaluate import EvaluationConfig, evaluate
from atft_kedro.evaluation.metrics import daily_ic

N_DAYS, N_STOCKS = 500, 2000


def panel(rng: np.random.Generator) -> pl.DataFrame:
    signal = rng.standard_normal((N_DAYS, N_STOCKS))
    days = [date(2020, 1, 1) + timedelta(days=d) for d in range(N_DAYS)]
    return pl.DataFrame(
        {
            "Date": [d for d in days for _ in range(N_STOCKS)],
            "Code": [f"{1000 + i}0" for _ in days for i in range(N_STOCKS)],
            "model": "bench",
            "fold": np.zeros(N_DAYS * N_STOCKS, dtype=np.int32),
            "phase": pl.Series([None] * (N_DAYS * N_STOCKS), dtype=pl.Int32),
            "pred_1d": (signal + rng.standard_normal(signal.shape)).ravel(),
            "pred_5d": (signal + rng.standard_normal(signal.shape)).ravel(),
            "target_1d": (0.05 * signal + rng.standard_normal(signal.shape)).ravel() * 0.01,
            "target_5d": (0.05 * signal + rng.standard_normal(signal.shape)).ravel() * 0.02,
        }
    )


def scipy_loop(preds: pl.DataFrame) -> list[tuple[float, float]]:
    out = []
    for _, day in preds.group_by("Date", maintain_order=True):
        p, y = day["pred_1d"].to_numpy(), day["target_1d"].to_numpy()
        out.append((stats.pearsonr(p, y).statistic, stats.spearmanr(p, y).statistic))
    return out


def main() -> None:
    preds = panel(np.random.default_rng(0))
    t0 = time.perf_counter()
    loop = scipy_loop(preds)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = daily_ic(preds, "pred_1d", "target_1d").table
    t_ours = time.perf_counter() - t0
    gap = np.abs(ours["rank_ic"].to_numpy() - np.array([r for _, r in loop])).max()
    print(f"panel {N_DAYS} days x {N_STOCKS} stocks = {preds.height:,} rows")
    print(
        f"daily IC+RankIC: scipy per-day loop {t_loop:.2f}s, polars group_by {t_ours:.2f}s, "
        f"speed-up x{t_loop / t_ours:.1f}, max |ΔRankIC| {gap:.1e}"
    )
    t0 = time.perf_counter()
    evaluate({"bench": preds}, [1, 5], EvaluationConfig(n_boot=2000))
    print(f"evaluate (1 model, h=1,5, 2 schemes, n_boot=2000): {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
