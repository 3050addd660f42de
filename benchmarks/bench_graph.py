"""Graph build at J-Quants scale against a straightforward pandas + NetworkX baseline.

Simulates ~4,000 codes with a market + 33-sector factor model (illiquid codes with no-trade
days, listings and delistings), builds the daily kNN correlation graphs of 250 consecutive dates
with ``atft_kedro.graph.build_graphs`` and the project's default ``GraphConfig`` (β- and
sector-residual returns, winsorised, 500-day window, shared-neighbour ranking, rebuilt every 5
days; wall time, peak RSS), then runs the baseline — per date the same residual returns in
pandas (rolling betas, rolling clip), ``pandas.DataFrame.corr`` over pairwise-complete
observations and a kNN graph built node by node with NumPy and NetworkX — on a few of the
rebuild dates, extrapolates it per rebuilt date, and checks that both give the same edges.

    .venv/bin/python benchmarks/bench_graph.py                 # 4000 codes, 250 dates
    .venv/bin/python benchmarks/bench_graph.py --codes 500 --dates 20 --baseline-dates 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time

import networkx as nx
import numpy as np
import pandas as pd
import polars as pl
import torch

from atft_kedro.graph import GraphConfig, build_graphs, graph_stats
from atft_kedro.graph.returns import MIN_GROUP_CODES


def simulate_panel(rng: np.random.Generator, codes: int, days: int) -> pl.DataFrame:
    """Panel (Date, Code, close, market, sector33, sector17) from a sector factor model."""
    sector = rng.choice(33, size=codes, p=rng.dirichlet(np.full(33, 2.0)))
    market = rng.choice(["0111", "0112", "0113"], size=codes, p=[0.45, 0.4, 0.15])
    beta = rng.uniform(0.5, 1.5, codes)
    returns = (
        beta * rng.normal(0, 0.01, (days, 1))
        + rng.normal(0, 0.008, (days, 33))[:, sector]
        + rng.normal(0, 1, (days, codes)) * rng.uniform(0.01, 0.025, codes)
    )
    close = 1000 * np.exp(np.cumsum(returns, axis=0))
    illiquid = rng.random(codes) < 0.1  # 10% of codes: no trade on 15% of days
    close[(rng.random((days, codes)) < 0.15) & illiquid] = np.nan
    first = np.where(rng.random(codes) < 0.03, rng.integers(0, days, codes), 0)
    last = np.where(rng.random(codes) < 0.02, rng.integers(0, days, codes), days)
    day = np.arange(days)[:, None]
    listed = (day >= first) & (day < last)

    dates = pd.bdate_range("2023-01-02", periods=days).to_numpy().astype("datetime64[D]")
    t, n = np.nonzero(listed)
    code_names = np.array([f"{1301 + j}0" for j in range(codes)])
    return pl.DataFrame(
        {
            "Date": dates[t],
            "Code": code_names[n],
            "close": close[t, n],
            "market": market[n],
            "sector33": np.char.zfill((sector[n] * 50 + 50).astype(str), 4),
            "sector17": np.char.zfill((sector[n] // 2 + 1).astype(str), 2),
        }
    ).with_columns(pl.col("close").fill_nan(None))


def baseline_residuals(
    log_returns: pd.DataFrame, sector: pd.Series, config: GraphConfig
) -> pd.DataFrame:
    """β × market out (β over the beta_window days before t), then the day's sector mean (the
    market mean for sectors with < 5 returns), then each return clipped to ± winsorize × its
    std over the lookback days before it."""
    market = log_returns.mean(axis=1)
    window, seen = config.beta_window, log_returns.notna()
    m = pd.DataFrame({c: market.where(seen[c]) for c in log_returns.columns})
    cov = log_returns.rolling(window, min_periods=1).cov(m).shift(1)
    var = m.rolling(window, min_periods=1).var().shift(1)
    count = seen.rolling(window, min_periods=1).sum().shift(1)
    beta = (cov / var).where(count >= 20, 1.0).fillna(1.0)
    x = log_returns - beta.mul(market, axis=0)
    market = x.mean(axis=1)
    by_sector = x.T.groupby(sector).transform("mean").T
    counts = x.notna().T.groupby(sector).transform("sum").T
    x = x - by_sector.where(counts >= MIN_GROUP_CODES, market, axis=0)
    bound = config.winsorize * x.rolling(config.lookback, min_periods=20).std().shift(1)
    return x.clip(-bound, bound, axis=None).where(bound.notna(), x)


def baseline_graph(
    panel: pd.DataFrame, returns: pd.DataFrame, date: dt.date, config: GraphConfig
) -> nx.Graph:
    """The straightforward way: pandas correlation, then each node's shared-neighbour ranking."""
    stamp = pd.Timestamp(date)
    position = returns.index.get_loc(stamp)
    window = returns.iloc[max(0, position - config.lookback + 1) : position + 1]
    today = panel[panel["Date"] == stamp].set_index("Code")
    eligible = window.columns[(window.notna().sum() >= config.min_obs) & window.std().gt(0)]
    eligible = eligible[eligible.isin(today.index)]
    corr = window[eligible].corr(min_periods=config.min_obs).fillna(0.0) * (1 - config.shrinkage)
    strength = corr.abs().to_numpy().copy()
    np.fill_diagonal(strength, -1.0)
    candidates = np.argsort(-strength, axis=1, kind="stable")[:, : config.candidates]
    weight = np.zeros_like(strength)
    for i, row in enumerate(candidates):
        weight[i, row] = strength[i, row]
    graph = nx.Graph()
    graph.add_nodes_from(eligible)
    for i, row in enumerate(candidates):
        shared = np.array([weight[i, row] @ weight[j, row] for j in row])
        for j in row[np.argsort(-(strength[i, row] + shared), kind="stable")[: config.k]]:
            if strength[i, j] >= config.threshold:
                code, other = eligible[i], eligible[j]
                graph.add_edge(
                    code,
                    other,
                    corr=corr.iat[i, j],
                    same_market=int(today.at[code, "market"] == today.at[other, "market"]),
                    same_sector33=int(today.at[code, "sector33"] == today.at[other, "sector33"]),
                )
    return graph


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=4000)
    parser.add_argument("--dates", type=int, default=250)
    parser.add_argument("--baseline-dates", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = GraphConfig(threads=args.threads, progress=False)

    load_before = os.getloadavg()
    warm_up = config.lookback + 1
    panel = simulate_panel(np.random.default_rng(args.seed), args.codes, args.dates + warm_up)
    dates = panel["Date"].unique().sort()
    start = dates[warm_up]  # the first date with a full window of returns
    rss_before = peak_rss_gb()

    tic, cpu = time.perf_counter(), time.process_time()
    graphs = build_graphs(panel, config, dates_from=start)
    ours, ours_cpu = time.perf_counter() - tic, time.process_time() - cpu
    rss_after = peak_rss_gb()
    tic = time.perf_counter()
    stats = graph_stats(graphs.edges, graphs.nodes)
    stats_time = time.perf_counter() - tic
    load_after = os.getloadavg()

    pdf = panel.to_pandas()
    close = pdf.pivot(index="Date", columns="Code", values="close")
    log_returns = np.log(close).diff()
    assert config.residualize == "sector33", "the baseline implements sector33 residuals only"
    sector = pdf.drop_duplicates("Code").set_index("Code")["sector33"].reindex(close.columns)
    log_returns = baseline_residuals(log_returns, sector, config)
    every = config.rebuild_every
    built = [d for i, d in enumerate(dates.to_list()) if i % every == 0 and d >= start]
    chosen = built[-args.baseline_dates :]
    tic, cpu = time.perf_counter(), time.process_time()
    baseline = [baseline_graph(pdf, log_returns, date, config) for date in chosen]
    per_date_baseline = (time.perf_counter() - tic) / len(chosen)
    per_date_baseline_cpu = (time.process_time() - cpu) / len(chosen)

    agree = []
    for date, graph in zip(chosen, baseline, strict=True):
        day = graphs.edges.filter(pl.col("Date") == date)
        ours_set = set(zip(day["src_code"], day["dst_code"], strict=True))
        theirs = {(u, v) for u, v in graph.edges} | {(v, u) for u, v in graph.edges}
        agree.append(len(ours_set & theirs) / max(1, len(ours_set | theirs)))

    per_date = ours / len(built)  # per graph built (the others reuse it)
    print(f"graph benchmark: {args.codes} codes x {args.dates} dates, torch threads {args.threads}")
    print(f"  load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2 cores)")
    print(
        f"  build_graphs: {ours:.1f} s total for {args.dates} dates ({len(built)} built, "
        f"rebuild_every {every}), {1000 * per_date:.0f} ms per built graph "
        f"(CPU time {ours_cpu:.1f} s: less than wall time when the cores are shared)"
    )
    print(f"  graph_stats:  {stats_time:.1f} s")
    print(f"  peak RSS: {rss_after:.2f} GB (before the build: {rss_before:.2f} GB)")
    print(
        f"  baseline (pandas corr + NumPy/NetworkX kNN) on {len(chosen)} built dates: "
        f"{per_date_baseline:.2f} s per graph, {per_date_baseline * len(built):.0f} s "
        f"extrapolated to {len(built)} graphs (CPU time {per_date_baseline_cpu:.2f} s per graph; "
        "residuals not counted)"
    )
    print(
        f"  speed ratio per built graph: {per_date_baseline / per_date:.1f}x wall, "
        f"{per_date_baseline_cpu / (ours_cpu / len(built)):.1f}x CPU time"
    )
    print(f"  edge agreement with the baseline (Jaccard): {min(agree):.4f} (worst date)")
    print(
        f"  nodes per date {stats['nodes'].mean():.0f}, mean degree {stats['mean_degree'].mean():.1f}"
        f", median degree {stats['median_degree'].mean():.1f}, "
        f"same-sector share {graphs.edges['same_sector33'].mean():.3f} "
        f"(random pairs {stats['same_sector33_random'].mean():.3f}, "
        f"ratio {stats['same_sector33_ratio'].mean():.1f}), "
        f"modularity {stats['sector33_modularity'].mean():.3f}"
    )


if __name__ == "__main__":
    main()
