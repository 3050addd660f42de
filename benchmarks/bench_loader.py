"""Streaming vs in-memory day-batch loader: day batches/s and peak RSS, against the training step.

Default size: 1,000 codes × 1,000 trading days (about a tenth of the `full` preset's panel of
~4,000 codes × ~2,500 days) with the registry's model inputs (random values; targets random with
NaN tails), day-major Parquet with 20 days per row group. Each measurement runs in its own
subprocess so that peak RSS (VmHWM) is separate:

- in_memory / streaming: build the dataset, then one shuffled training epoch over the first 80% of
  days with ``seq_len`` 20; batches/s over the epoch (and including the build), peak RSS.
- train_step: forward + backward + AdamW step of the real model (``atft_kedro.model``) if it
  imports, else a small LSTM, on day batches of the same shape; steps/s.

Targets (issue 6): streaming peak RSS ≤ 40% of in-memory, throughput ≥ 80% of in-memory, loader
≥ 5× the training step rate. Everything is single-threaded (``torch.set_num_threads(1)``); the
machine is shared, so rates vary with contention — compare ratios within one run.

    .venv/bin/python benchmarks/bench_loader.py [--codes 1000] [--days 1000] [--graph-k 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HORIZONS = [1, 5, 10, 20]
SEQ_LEN = 20


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would inherit the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def input_columns() -> tuple[list[str], list[str]]:
    """(feature names, mask names) from the registry, or a stand-in of the same size."""
    try:
        from atft_kedro.features.registry import feature_names, mask_names

        return feature_names(), mask_names()
    except ImportError:
        return [f"feature_{i}" for i in range(80)], [f"is_family_{i}_valid" for i in range(10)]


def write_market(folder: Path, n_codes: int, n_days: int, graph_k: int, seed: int = 0) -> None:
    """Random day-major features (whole days per row group) and, if graph_k, a random kNN graph."""
    from atft_kedro.market.taxonomy import MARKET_CODES, SECTOR33_CODES

    rng = np.random.default_rng(seed)
    features, masks = input_columns()
    days = np.arange(np.datetime64("2015-01-05"), np.datetime64("2030-01-01"))
    days = days[np.is_busday(days)][:n_days]
    codes = np.array([f"{1000 + 2 * i:04d}0" for i in range(n_codes)])  # 5 characters up to 4,500
    market = rng.choice(MARKET_CODES, n_codes)
    sector = rng.choice(SECTOR33_CODES, n_codes)
    writer, edge_writer = None, None
    for first in range(0, n_days, 20):
        block = days[first : first + 20]
        listed = rng.random((block.size, n_codes)) > 0.02  # ~2% of rows missing (suspensions)
        d, c = np.nonzero(listed)
        n = d.size
        cols = {
            "Date": pa.array(block[d], pa.date32()),
            "Code": pa.array(codes[c]),
            "market": pa.array(market[c]),
            "sector33": pa.array(sector[c]),
            "sector17": pa.array(np.full(n, "1")),
        }
        values = rng.standard_normal((n, len(features)), dtype=np.float32)
        values[rng.random(values.shape) < 0.05] = np.nan
        cols |= {name: values[:, j] for j, name in enumerate(features)}
        cols |= {name: rng.integers(0, 2, n).astype(np.int8) for name in masks}
        for h in HORIZONS:
            y = rng.standard_normal(n, dtype=np.float32) * 0.02
            y[first + d >= n_days - h] = np.nan
            cols[f"target_{h}d"] = y
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(folder / "features.parquet", table.schema)
        writer.write_table(table)
        if graph_k:
            src = np.repeat(np.arange(n), graph_k)
            same_day = d[src]
            dst = np.clip(src + rng.integers(1, n_codes, src.size) % 50 - 25, 0, n - 1)
            keep = (dst != src) & (d[dst] == same_day)
            src, dst = src[keep], dst[keep]
            s, t = np.r_[src, dst], np.r_[dst, src]
            order = np.lexsort((t, s, d[s]))
            s, t = s[order], t[order]
            edges = pa.table(
                {
                    "Date": pa.array(block[d[s]], pa.date32()),
                    "src_code": pa.array(codes[c[s]]),
                    "dst_code": pa.array(codes[c[t]]),
                    "corr": rng.uniform(0.3, 1, s.size).astype(np.float32),
                    "same_market": (market[c[s]] == market[c[t]]).astype(np.int8),
                    "same_sector33": (sector[c[s]] == sector[c[t]]).astype(np.int8),
                }
            )
            edge_writer = edge_writer or pq.ParquetWriter(
                folder / "graph_edges.parquet", edges.schema
            )
            edge_writer.write_table(edges)
    writer.close()
    if edge_writer:
        edge_writer.close()


def dataset_kwargs(folder: Path) -> dict:
    from atft_kedro.loader.day_table import FeatureTable
    from atft_kedro.loader.scaler import OnlineRobustScaler

    features, masks = input_columns()
    scaler = OnlineRobustScaler.from_dict(json.loads((folder / "scaler.json").read_text()))
    calendar = FeatureTable(
        folder / "features.parquet", [], HORIZONS, None, {"market": [], "sector33": []}
    ).calendar
    train = [
        np.datetime64(int(d), "D").astype(dt.date) for d in calendar[: int(0.8 * calendar.size)]
    ]
    graph = folder / "graph_edges.parquet"
    return dict(
        features_path=folder / "features.parquet",
        dates=train,
        columns=[*features, *masks],
        horizons=HORIZONS,
        seq_len=SEQ_LEN,
        scaler=scaler,
        graph_edges_path=graph if graph.exists() else None,
        shuffle=True,
        seed=0,
        require_target=True,
    )


def measure_loader(folder: Path, implementation: str) -> dict:
    import torch

    from atft_kedro.loader.datasets import day_loader, make_day_dataset

    torch.set_num_threads(1)
    base = peak_rss_mb()
    start = time.perf_counter()
    dataset = make_day_dataset(implementation, **dataset_kwargs(folder))
    built = time.perf_counter()
    n = sum(1 for _ in day_loader(dataset, num_workers=0))
    done = time.perf_counter()
    return {
        "batches": n,
        "build_s": built - start,
        "epoch_s": done - built,
        "batches_per_s": n / (done - built),
        "batches_per_s_with_build": n / (done - start),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": base,
    }


def measure_train_step(folder: Path, steps: int) -> dict:
    import torch

    from atft_kedro.loader.datasets import make_day_dataset

    torch.set_num_threads(1)
    kwargs = dataset_kwargs(folder)
    kwargs["dates"] = kwargs["dates"][-steps:]
    batches = list(make_day_dataset("streaming", **kwargs))
    n_features = batches[0]["x"].shape[-1]
    try:
        from atft_kedro.model.atft_gat_fan import ATFTGATFAN
        from atft_kedro.model.config import ModelConfig

        model, name = (
            ATFTGATFAN(ModelConfig(n_features=n_features, horizons=tuple(HORIZONS))),
            "ATFTGATFAN",
        )

        def loss_of(batch):
            out = model(batch)
            terms = [
                ((out["point"][h] - batch["y"][h].nan_to_num()) ** 2)[batch["y_mask"][h]].mean()
                for h in HORIZONS
            ]
            return sum(terms) + out["aux_loss"]
    except ImportError:
        lstm, head = (
            torch.nn.LSTM(n_features, 64, batch_first=True),
            torch.nn.Linear(64, len(HORIZONS)),
        )
        model, name = torch.nn.ModuleList([lstm, head]), "LSTM(64)"

        def loss_of(batch):
            pred = head(lstm(batch["x"])[0][:, -1])
            y = torch.stack([batch["y"][h] for h in HORIZONS], 1)
            return ((pred - y.nan_to_num()) ** 2)[y.isfinite()].mean()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_of(batches[0]).backward()  # warm-up
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        loss_of(batch).backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    return {
        "model": name,
        "steps": len(batches),
        "steps_per_s": len(batches) / elapsed,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(mode: str, folder: Path, steps: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--folder", str(folder), "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument(
        "--graph-k", type=int, default=0, help="random edges per node per day (0: no graph)"
    )
    parser.add_argument("--steps", type=int, default=30, help="training steps timed")
    parser.add_argument("--child", choices=["in_memory", "streaming", "train_step"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.child:
        result = (
            measure_train_step(args.folder, args.steps)
            if args.child == "train_step"
            else measure_loader(args.folder, args.child)
        )
        print(json.dumps(result))
        return
    from atft_kedro.loader.scaler import OnlineRobustScaler

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_market(folder, args.codes, args.days, args.graph_k)
        features, _ = input_columns()
        calendar = np.unique(
            pq.read_table(folder / "features.parquet", columns=["Date"]).column("Date").to_numpy()
        )
        train = calendar[: int(0.8 * calendar.size)].tolist()
        scaler = OnlineRobustScaler(features, seed=0).fit_from_parquet(
            folder / "features.parquet", train
        )
        (folder / "scaler.json").write_text(json.dumps(scaler.to_dict()))
        size_mb = (folder / "features.parquet").stat().st_size / 2**20
        print(
            f"data: {args.codes} codes × {args.days} days, F = {len(dataset_kwargs(folder)['columns'])}, "
            f"graph_k = {args.graph_k}, features.parquet {size_mb:.0f} MiB, "
            f"written and scaler fitted in {time.perf_counter() - start:.1f} s"
        )
        memory = run_child("in_memory", folder, args.steps)
        streaming = run_child("streaming", folder, args.steps)
        train = run_child("train_step", folder, args.steps)
    for name, r in (("in_memory", memory), ("streaming", streaming)):
        print(
            f"{name:>10}: {r['batches']} day batches, build {r['build_s']:.1f} s, "
            f"{r['batches_per_s']:.1f} batches/s ({r['batches_per_s_with_build']:.1f} incl. build), "
            f"peak RSS {r['peak_rss_mb']:.0f} MiB (after imports {r['rss_after_imports_mb']:.0f})"
        )
    print(f"train step ({train['model']}, 1 thread): {train['steps_per_s']:.2f} steps/s")
    rss = streaming["peak_rss_mb"] / memory["peak_rss_mb"]
    data_rss = (streaming["peak_rss_mb"] - streaming["rss_after_imports_mb"]) / (
        memory["peak_rss_mb"] - memory["rss_after_imports_mb"]
    )
    speed = streaming["batches_per_s"] / memory["batches_per_s"]
    speed_build = streaming["batches_per_s_with_build"] / memory["batches_per_s_with_build"]
    headroom = streaming["batches_per_s"] / train["steps_per_s"]
    print(
        f"streaming / in-memory peak RSS: {rss:.2f} (target ≤ 0.40; above imports {data_rss:.2f})"
    )
    print(
        f"streaming / in-memory batches/s: {speed:.2f} (target ≥ 0.80; incl. build {speed_build:.2f})"
    )
    print(f"streaming batches/s / training steps/s: {headroom:.1f}× (target ≥ 5×)")


if __name__ == "__main__":
    main()
