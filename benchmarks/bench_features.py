"""Feature build speed and memory: polars ``build_features`` vs a pandas groupby-rolling reference.

    .venv/bin/python benchmarks/bench_features.py                          # the `full` preset, 4000 x 2500
    .venv/bin/python benchmarks/bench_features.py --codes 1000 --days 2500 # a quarter of it

The synthetic market (``full`` preset, with ``--codes/--days`` overrides) is generated once and its
panel cached as Parquet under ``--cache``. Each contender then runs in its own subprocess, so its
peak RSS (``ru_maxrss``, which includes loading the tables) is its own; wall and CPU time (user +
system over all threads) cover the build alone. Contenders:

- ``polars``: ``build_features``, every family (82 features, masks, targets, per-Date z-scores).
- ``polars_subset``: ``panel_features`` for the per-code families ``returns, volatility, ma_gap,
  range_volume`` (34 features, raw values): the same expressions as the full build.
- ``pandas``: a straightforward ``groupby("Code")`` + ``rolling``/``ewm``/``shift`` implementation
  of the same 34 features (the like-for-like reference; writing every family in pandas would take
  minutes per run at this size). Its output is compared with ``polars_subset`` value by value.

The machine is shared: the load average is printed before each run, and CPU time is the figure
that least depends on the other jobs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SUBSET_FAMILIES = ("returns", "volatility", "ma_gap", "range_volume")


def pandas_reference(panel):  # panel: pandas DataFrame
    """The subset families with pandas groupby-rolling, same definitions as the registry."""
    import pandas as pd

    df = panel.sort_values(["Code", "Date"]).reset_index(drop=True)
    g = df.groupby("Code", sort=False)
    prices = ["open", "high", "low", "close"]
    ok = (df[prices] > 0).all(axis=1)
    df["c"] = df["close"].where(df["close"] > 0)
    df["c"] = g["c"].ffill()
    df["o"] = df["open"].where(ok)
    df["h"] = df[prices].max(axis=1).where(ok)
    df["l"] = df[prices].min(axis=1).where(ok)
    g = df.groupby("Code", sort=False)
    prev = g["c"].shift(1)
    df["lr"] = np.log(df["c"] / prev)
    df["hl2"] = np.log(df["h"] / df["l"]) ** 2 / (4 * math.log(2))

    def roll(col, w, how):
        r = df.groupby("Code", sort=False)[col].rolling(w, min_periods=w)
        return getattr(r, how)().reset_index(level=0, drop=True)

    def ema(col, span):
        return df.groupby("Code", sort=False)[col].transform(
            lambda s: s.ewm(span=span, adjust=False, min_periods=span, ignore_na=True).mean()
        )

    out = pd.DataFrame({"Date": df["Date"], "Code": df["Code"]})
    for h in (1, 5, 10, 20, 60, 120):
        out[f"ret_{h}d"] = df["c"] / g["c"].shift(h) - 1
    for h in (1, 5, 20):
        out[f"log_ret_{h}d"] = np.log(df["c"] / g["c"].shift(h))
    for w in (5, 10, 20, 60):
        out[f"vol_{w}d"] = roll("lr", w, "std")
    for w in (5, 20):
        out[f"parkinson_vol_{w}d"] = np.sqrt(roll("hl2", w, "mean"))
    out["vol_ratio_5_20"] = out["vol_5d"] / out["vol_20d"]
    sma = {w: roll("c", w, "mean") for w in (5, 20, 60)}
    for w in (5, 20, 60):
        out[f"sma_gap_{w}"] = df["c"] / sma[w] - 1
    for s in (5, 10, 20, 60):
        out[f"ema_gap_{s}"] = df["c"] / ema("c", s) - 1
    out["sma_cross_5_20"] = sma[5] / sma[20] - 1
    out["sma_cross_20_60"] = sma[20] / sma[60] - 1
    c, h, lo = df["c"], df["h"], df["l"]
    out["hl_range"] = (h - lo) / c
    out["close_to_high"] = c / h - 1
    out["close_to_low"] = c / lo - 1
    out["close_position"] = np.where(h > lo, (c - lo) / (h - lo), np.where(h == lo, 0.5, np.nan))
    out["gap_open"] = df["o"] / prev - 1
    out["volume_ratio_5"] = df["volume"] / roll("volume", 5, "mean")
    out["volume_ratio_20"] = df["volume"] / roll("volume", 20, "mean")
    out["log_turnover"] = np.log1p(df["turnover"])
    out["turnover_ratio_20"] = df["turnover"] / roll("turnover", 20, "mean")
    return out.replace([np.inf, -np.inf], np.nan)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


def child(role: str, cache: Path, result: Path) -> None:
    """Run one contender on the cached tables; write its figures to ``result`` (JSON)."""
    import polars as pl

    panel = pl.read_parquet(cache / "panel.parquet")
    opt = {
        n: pl.read_parquet(cache / f"{n}.parquet") for n in ("topix", "trades_spec", "statements")
    }
    frame = panel.to_pandas() if role == "pandas" else None
    t0, c0 = time.perf_counter(), os.times()
    if role == "pandas":
        out = pandas_reference(frame)
    elif role == "polars_subset":
        from atft_kedro.features import panel_features

        out = panel_features(panel, SUBSET_FAMILIES)
    else:
        from atft_kedro.features import build_features

        out = build_features(panel, **opt)
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    if role == "pandas":
        out.to_parquet(result.with_suffix(".parquet"))  # (Code, Date) order, like polars_subset
    elif role == "polars_subset":
        out.write_parquet(result.with_suffix(".parquet"))
    figures = {"wall_s": wall, "cpu_s": cpu, "peak_rss_gib": _peak_gib(), "rows": len(out)}
    result.write_text(json.dumps(figures))


def _compare(a_path: Path, b_path: Path) -> tuple[int, float, float]:
    """(columns, max abs diff, max rel diff) between two outputs; raises if they differ."""
    import polars as pl

    a, b = pl.read_parquet(a_path), pl.read_parquet(b_path)
    assert a.select("Date", "Code").equals(b.select("Date", "Code")), "row keys differ"
    worst_abs = worst_rel = 0.0
    for col in a.columns[2:]:
        x, y = (
            a[col].cast(pl.Float64).to_numpy(),
            b[col].cast(pl.Float32).cast(pl.Float64).to_numpy(),
        )
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6, equal_nan=True, err_msg=col)
        both = np.isfinite(x) & np.isfinite(y)
        diff = np.abs(x[both] - y[both])
        worst_abs = max(worst_abs, float(diff.max(initial=0.0)))
        rel = diff / np.maximum(np.abs(y[both]), 1e-6)  # relative where |value| > 1e-6
        worst_rel = max(worst_rel, float(rel.max(initial=0.0)))
    return len(a.columns) - 2, worst_abs, worst_rel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--codes", type=int, default=4000)
    ap.add_argument("--days", type=int, default=2500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_features"))
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    cache = args.cache / f"{args.codes}x{args.days}_s{args.seed}"
    if args.role:
        return child(args.role, cache, args.result)

    if not (cache / "panel.parquet").exists():
        from atft_kedro.market.panel import build_panel
        from atft_kedro.market.synthetic import generate_market

        t0 = time.perf_counter()
        m = generate_market("full", args.seed, n_codes=args.codes, n_days=args.days)
        cache.mkdir(parents=True, exist_ok=True)
        build_panel(m["daily_quotes"], m["listed_info"]).write_parquet(cache / "panel.parquet")
        for n in ("topix", "trades_spec", "statements"):
            m[n].write_parquet(cache / f"{n}.parquet")
        print(f"generated {args.codes} codes x {args.days} days in {time.perf_counter() - t0:.0f}s")
        del m

    def run(role: str, label: str) -> dict:
        res = cache / f"{role}.json"
        cmd = [
            sys.executable,
            __file__,
            "--codes",
            str(args.codes),
            "--days",
            str(args.days),
            "--seed",
            str(args.seed),
            "--cache",
            str(args.cache),
            "--role",
            role,
            "--result",
            str(res),
        ]
        load = " ".join(open("/proc/loadavg").read().split()[:3])
        subprocess.run(cmd, check=True)
        r = json.loads(res.read_text())
        print(
            f"{label:44s} {r['rows']:>11,} rows  wall {r['wall_s']:6.1f}s  "
            f"{r['rows'] / r['wall_s']:>10,.0f} rows/s  CPU {r['cpu_s']:6.1f}s  "
            f"peak RSS {r['peak_rss_gib']:.2f} GiB ({r['peak_rss_gib'] * 1.073741824:.2f} GB)  "
            f"[load {load}]"
        )
        return r

    print(
        f"{os.cpu_count()} CPUs, POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'unset')}"
    )
    full = run("polars", "polars build_features (82 features, z-scored)")
    if args.skip_pandas:
        return
    sub = run("polars_subset", "polars panel_features (34 features, raw)")
    ref = run("pandas", "pandas groupby-rolling (same 34 features)")
    n_cols, worst_abs, worst_rel = _compare(
        cache / "polars_subset.parquet", cache / "pandas.parquet"
    )
    print(
        f"outputs equal on {n_cols} features x {sub['rows']:,} rows (rtol 1e-4): "
        f"max abs diff {worst_abs:.2e}, max rel diff {worst_rel:.2e}"
    )
    print(
        f"speed-up, same 34 features: pandas / polars = {ref['wall_s'] / sub['wall_s']:.1f}x wall, "
        f"{ref['cpu_s'] / sub['cpu_s']:.1f}x CPU"
    )
    print(
        f"pandas (34 features) / polars full build (82 + z-scores) = "
        f"{ref['wall_s'] / full['wall_s']:.2f}x wall"
    )
    gb = full["peak_rss_gib"] * 1.073741824
    print(
        f"targets at this size: build <= 120 s: {full['wall_s'] <= 120}; peak RSS <= 6 GB: "
        f"{gb <= 6}; >= 5x pandas (wall, same features): {ref['wall_s'] / sub['wall_s'] >= 5}"
    )


if __name__ == "__main__":
    main()
