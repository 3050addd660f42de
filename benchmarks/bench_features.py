"""Feature build speed and memory: polars ``build_features`` vs a pandas groupby-rolling reference.

    .venv/bin/python benchmarks/bench_features.py --codes 4000 --days 2500   # the `full` preset

The synthetic market (``full`` preset, with ``--codes/--days`` overrides) is generated once and its
panel cached as Parquet under ``--cache``. Each contender then runs in its own subprocess, so its
peak RSS (``ru_maxrss``) is its own: load the panel, build, report wall time. The polars run builds
every family (82 features, masks, targets, z-scores). The pandas reference is a straightforward
``groupby("Code")`` + ``rolling``/``ewm``/``shift`` implementation of the per-code families
``returns, volatility, ma_gap, range_volume`` (34 features, raw values); writing all families in
pandas would take minutes per run at this size. Its output is compared with polars' raw
(``cs_method="none"``) values of the same features for equality within float32 tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
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


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


def child(role: str, cache: Path, result: Path) -> None:
    """Run one contender on the cached tables; write {wall_s, peak_rss_gb, rows} to ``result``."""
    import polars as pl

    panel = pl.read_parquet(cache / "panel.parquet")
    opt = {
        n: pl.read_parquet(cache / f"{n}.parquet") for n in ("topix", "trades_spec", "statements")
    }
    if role == "pandas":
        frame = panel.to_pandas()
        t0 = time.perf_counter()
        out = pandas_reference(frame)
        wall = time.perf_counter() - t0
        out.sort_values(["Date", "Code"]).to_parquet(result.with_suffix(".parquet"))
    else:
        from atft_kedro.features import build_features

        method = "none" if role == "polars_raw" else "zscore"
        t0 = time.perf_counter()
        out = build_features(panel, **opt, cs_method=method)
        wall = time.perf_counter() - t0
        if role == "polars_raw":
            from atft_kedro.features import registry

            cols = [c for f in SUBSET_FAMILIES for c in registry.family_features(f)]
            out.select("Date", "Code", *cols).write_parquet(result.with_suffix(".parquet"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # includes loading; wall_s is the build alone
    result.write_text(
        json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": _peak_gb(), "rows": len(out)})
    )


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

    import polars as pl

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

    def run(role: str) -> dict:
        res = cache / f"{role}.json"
        cmd = [sys.executable, __file__, "--codes", str(args.codes), "--days", str(args.days),
               "--seed", str(args.seed), "--cache", str(args.cache), "--role", role,
               "--result", str(res)]  # fmt: skip
        subprocess.run(cmd, check=True)
        return json.loads(res.read_text())

    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average before: {' '.join(load)} (2 cores shared with other jobs)")
    full = run("polars")
    print(f"polars build_features (82 features, zscore): {full['rows']:,} rows in "
          f"{full['wall_s']:.1f}s = {full['rows'] / full['wall_s']:,.0f} rows/s, "
          f"peak RSS {full['peak_rss_gb']:.2f} GiB, process CPU {full['cpu_s']:.0f}s")  # fmt: skip
    if args.skip_pandas:
        return
    raw = run("polars_raw")
    ref = run("pandas")
    print(f"polars build_features (raw, all families):   {raw['wall_s']:.1f}s, "
          f"peak RSS {raw['peak_rss_gb']:.2f} GiB, process CPU {raw['cpu_s']:.0f}s")  # fmt: skip
    print(f"pandas reference (34 features, 4 families):  {ref['wall_s']:.1f}s, "
          f"peak RSS {ref['peak_rss_gb']:.2f} GiB, process CPU {ref['cpu_s']:.0f}s")  # fmt: skip
    print(
        f"speed-up (wall): pandas subset / polars all families = {ref['wall_s'] / full['wall_s']:.1f}x"
    )
    print(
        f"speed-up (wall): pandas subset / polars raw all families = {ref['wall_s'] / raw['wall_s']:.1f}x"
    )
    a = pl.read_parquet(cache / "polars_raw.parquet")
    b = pl.read_parquet(cache / "pandas.parquet")
    assert a.select("Date", "Code").equals(b.select("Date", "Code")), "row keys differ"
    worst = 0.0
    for col in a.columns[2:]:
        x, y = a[col].cast(pl.Float64).to_numpy(), b[col].cast(pl.Float64).to_numpy()
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6, equal_nan=True, err_msg=col)
        both = np.isfinite(x) & np.isfinite(y)
        worst = max(worst, float(np.max(np.abs(x[both] - y[both]) / (np.abs(y[both]) + 1e-6))))
    print(f"outputs equal on {len(a.columns) - 2} features (max relative diff {worst:.1e})")


if __name__ == "__main__":
    main()
