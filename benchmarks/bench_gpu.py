"""Training throughput of ATFT-GAT-FAN on whatever device is present, beside a plain LSTM.

1. **One step** (forward + backward + AdamW) of the default model (F = 82 inputs, L = 20 days,
   ~20 edges per stock, FAN, SAN and GAT on; bf16 autocast on CUDA as ``training.device: auto``
   uses) at N = 300 stocks (a ``small`` day) and N = 4,000 (the J-Quants universe), one day per
   step (D = 1) and D days per step (``training.days_per_step``). Median of the timed steps after a
   warm-up. A plain LSTM of the same width runs the same stocks in the same process: the ratio is
   the figure that travels between machines. On CUDA, the peak GPU memory of each configuration.
2. **The real training loop** (``training.fold_training.train_folds``: phases 0 to 4, phase 4 with
   augmentation and SWA, checkpoints, validation) end to end on a generated day-major file, with
   samples/s per phase and every warning raised.

It imports only torch, numpy, pyarrow and the project's model, loader and training modules (no
Kedro, no polars), so it runs on a machine that has only PyTorch:

    python benchmarks/bench_gpu.py                 # the full table (meant for a GPU)
    python benchmarks/bench_gpu.py --small         # seconds on a CPU (CI runs this)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # runs from a bare checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_model  # noqa: E402  (the same random day batches as the CPU model benchmark)

from atft_kedro.loader.day_batch import collate_days  # noqa: E402
from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig  # noqa: E402
from atft_kedro.training.checkpoints import CheckpointStore  # noqa: E402
from atft_kedro.training.fold_data import fit_scalers  # noqa: E402
from atft_kedro.training.fold_training import TrainingRun, train_folds  # noqa: E402
from atft_kedro.training.validation import to_device  # noqa: E402

HORIZONS = bench_model.HORIZONS
F, L, EDGES_PER_STOCK = 82, 20, 20


def day_batch(n: int, seed: int) -> dict:
    """Random day ``seed`` of N stocks, F inputs, L days, ~20 edges per stock (bench_model's)."""
    return bench_model.day_batch(n, L, F, EDGES_PER_STOCK, seed)


class PlainLSTM(nn.Module):
    """The yardstick: an LSTM over the window, its last state → one linear output per horizon."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(F, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(HORIZONS))

    def loss(self, batch: dict) -> torch.Tensor:
        out, _ = self.lstm(batch["x"])
        pred = self.head(out[:, -1])
        return ((pred - torch.stack([batch["y"][h] for h in HORIZONS], 1)) ** 2).mean()


def time_steps(step, device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``step()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def default_model(hidden: int, device: torch.device) -> tuple[ATFTGATFAN, ATFTLoss]:
    """The default model (FAN, SAN and GAT on) and loss, seeded, on ``device``."""
    torch.manual_seed(0)
    model = ATFTGATFAN(
        ModelConfig(
            n_features=F, hidden=hidden, horizons=HORIZONS, use_fan=True, use_san=True, use_gat=True
        )
    )
    return model.to(device), ATFTLoss(LossConfig(target="rank_gauss", sharpe_weight=0.1)).to(device)


def train_step(module: nn.Module, loss: Callable[[], torch.Tensor], device: torch.device):
    """One AdamW step of ``module`` on ``loss()`` (bf16 autocast on CUDA, as training uses)."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    cuda = device.type == "cuda"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            value = loss()
        value.backward()
        optimizer.step()

    module.train()
    return step


def days_batch(n: int, days: int, device: torch.device) -> dict:
    """D random days of N stocks as one multi-day batch (one day: the one-day batch)."""
    return to_device(collate_days([day_batch(n, s) for s in range(days)]), device)


def step_row(n: int, days: int, hidden: int, device: torch.device, args) -> dict:
    """Seconds per step and samples/s of the model and of the plain LSTM on D days of N stocks."""
    batch = days_batch(n, days, device)
    model, loss_fn = default_model(hidden, device)
    lstm = PlainLSTM(hidden).to(device)
    out = {"N": n, "D": days, "H": hidden}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for name, module, loss in (
        ("model", model, lambda: loss_fn(model(batch), batch)[0]),
        ("lstm", lstm, lambda: lstm.loss(batch)),
    ):
        seconds = time_steps(train_step(module, loss, device), device, args.warmup, args.repeats)
        out[f"{name}_ms"] = 1000 * seconds
        out[f"{name}_samples_s"] = n * days / seconds
        if name == "model" and device.type == "cuda":
            out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def profile_step(n: int, days: int, hidden: int, device: torch.device, top: int = 12) -> None:
    """torch.profiler over 3 steps of the model: kernels (or CPU ops) per step, the top ops."""
    from torch.profiler import ProfilerActivity, profile

    batch = days_batch(n, days, device)
    model, loss_fn = default_model(hidden, device)
    step = train_step(model, lambda: loss_fn(model(batch), batch)[0], device)
    for _ in range(3):
        step()
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(3):
            step()
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    if cuda:
        kernels = sum(e.count for e in events if e.device_type.name == "CUDA") / 3
        print(f"\nprofile N = {n}, D = {days}: {kernels:.0f} CUDA kernels per step")
        sort = "cuda_time_total"
    else:
        print(f"\nprofile N = {n}, D = {days} (CPU ops)")
        sort = "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=top, max_name_column_width=50))


def write_market(folder: Path, n_codes: int, n_days: int, seed: int = 0) -> tuple[Path, Path, dict]:
    """A day-major features file (82 inputs: 78 features + 4 masks, planted signal) and a
    k-nearest graph, with pyarrow only; one walk-forward fold."""
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2020-01-06"), np.datetime64("2030-01-01"))
    days = days[np.is_busday(days)][:n_days]
    codes = np.array([f"{1301 + i}0" for i in range(n_codes)])
    n = n_days * n_codes
    features = {f"f_{j:02d}": rng.standard_normal(n).astype(np.float32) for j in range(F - 4)}
    signal = features["f_00"]
    columns = {
        "Date": pa.array(np.repeat(days, n_codes)),
        "Code": np.tile(codes, n_days),
        "market": np.array(["0111", "0112", "0113"])[rng.integers(0, 3, n)],
        "sector33": np.array(["0050", "1050", "3650", "5250"])[rng.integers(0, 4, n)],
        "sector17": np.array(["1", "2"])[rng.integers(0, 2, n)],
        **features,
        **{f"is_m{j}_valid": np.ones(n, dtype=np.int8) for j in range(4)},
        **{
            f"{prefix}_{h}d": (0.01 * signal + 0.02 * rng.standard_normal(n)).astype(np.float32)
            for prefix in ("target", "target_next")
            for h in HORIZONS
        },  # close, and the label
    }
    table = pa.table(columns)
    path = folder / "features.parquet"
    pq.write_table(table, path, row_group_size=n_codes)  # one day per row group
    src = np.tile(np.repeat(codes, 10), n_days)
    dst = np.tile(
        codes[(np.arange(n_codes).repeat(10) + np.tile(np.arange(1, 11), n_codes)) % n_codes],
        n_days,
    )
    edges = pa.table(
        {
            "Date": pa.array(np.repeat(days, n_codes * 10)),
            "src_code": src,
            "dst_code": dst,
            "corr": rng.uniform(0.2, 0.9, src.size).astype(np.float32),
            "same_market": np.zeros(src.size, np.int8),
            "same_sector33": np.ones(src.size, np.int8),
        }
    )
    edges_path = folder / "graph_edges.parquet"
    pq.write_table(edges, edges_path)
    iso = [str(d) for d in days]
    train_end, val_end = int(0.6 * n_days), int(0.85 * n_days)  # a 5-day gap before validation
    fold = {
        "fold": 0,
        "train": [iso[0], iso[train_end]],
        "val": [iso[train_end + 6], iso[val_end]],
        "test": [iso[-5], iso[-1]],
    }
    return path, edges_path, {"n_splits": 1, "folds": [fold]}


_ALL_ON = {"use_fan": True, "use_san": True, "use_gat": True, "epochs": 1}
_LOSS = {"target": "rank_gauss", "aux_weight": 0.01}
PHASES = {  # the conf's five phases, one epoch each, every module on from phase 1
    "0": {"name": "baseline", "epochs": 1, "lr": 1e-3, "loss": {"target": "rank_gauss"}},
    "1": {"name": "adaptive_norm", **_ALL_ON, "use_gat": False, "lr": 5e-4, "loss": _LOSS},
    "2": {"name": "graph", **_ALL_ON, "lr": 5e-4, "loss": _LOSS},
    "3": {"name": "fine_tune", **_ALL_ON, "lr": 2e-4, "loss": {**_LOSS, "sharpe_weight": 0.1}},
    "4": {
        "name": "augment_swa",
        **_ALL_ON,
        "lr": 2e-4,
        "loss": {**_LOSS, "sharpe_weight": 0.1},
        "augmentation": {
            "feature_noise_std": 0.05,
            "frequency_dropout_prob": 0.1,
            "frequency_dropout_batch_prob": 0.25,
        },
        "averaging": {"kind": "swa", "start_epoch": 0},
    },
}


def real_loop(n_codes: int, n_days: int, days_per_step: int, hidden: int) -> dict:
    """train_folds on a generated market: samples/s per phase, warnings raised."""
    training = {
        "device": "auto",
        "threads": None,
        "progress_bar": False,
        "max_train_days_per_epoch": None,
        "days_per_step": days_per_step,
        "inputs": None,
        "loader": {"implementation": "in_memory"},
        "model": {"hidden": hidden},
        "phases": PHASES,
    }
    job = TrainingRun.from_params(
        training, label="close", phase="all", seed=0, horizons=HORIZONS, seq_len=L
    )  # target_{h}d: close to close
    with (
        tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        folder = Path(tmp)
        features, edges, splits = write_market(folder, n_codes, n_days)
        scalers = fit_scalers(features, splits, job.config, seed=0)
        started = time.perf_counter()
        records = train_folds(
            features, edges, splits, scalers, CheckpointStore(folder / "ckpt"), job
        )
        seconds = time.perf_counter() - started
    phases = {key: [e["samples_per_s"] for e in r["epochs"]] for key, r in records.items()}
    finite = all(np.isfinite(e["train_total"]) for r in records.values() for e in r["epochs"])
    return {
        "seconds": seconds,
        "samples_s": phases,
        "finite": finite,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="CPU-sized: N = 50 / 200, seconds")
    parser.add_argument("--days-per-step", type=int, default=8, help="D of the multi-day rows")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--extra-days", type=int, nargs="*", default=[], help="more D to time")
    parser.add_argument("--profile", action="store_true", help="profile a step at the largest N")
    parser.add_argument("--loop-only", action="store_true", help="only the real training loop")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    sizes = (50, 200) if args.small else (300, 4000)
    if args.small:
        args.repeats = min(args.repeats, 3)
    if not args.loop_only:
        print(
            f"\n{'N':>5} {'D':>3} {'H':>4} {'model ms':>9} {'samples/s':>10} {'LSTM ms':>8} "
            f"{'LSTM samples/s':>15} {'ratio':>6} {'peak GiB':>9}"
        )
    for hidden in [] if args.loop_only else args.hidden:
        for n in sizes:
            for days in sorted({1, args.days_per_step, *args.extra_days}):
                r = step_row(n, days, hidden, device, args)
                peak = f"{r['peak_gib']:9.2f}" if "peak_gib" in r else f"{'-':>9}"
                print(
                    f"{n:>5} {days:>3} {hidden:>4} {r['model_ms']:9.1f} "
                    f"{r['model_samples_s']:10,.0f} {r['lstm_ms']:8.1f} "
                    f"{r['lstm_samples_s']:15,.0f} {r['model_ms'] / r['lstm_ms']:5.1f}x {peak}",
                    flush=True,
                )

    if args.profile:
        for days in sorted({1, args.days_per_step}):
            profile_step(sizes[-1], days, args.hidden[0], device)

    n_codes, n_days = (40, 90) if args.small else (300, 160)
    print(f"\nreal training loop: {n_codes} stocks x {n_days} days, phases 0-4, one epoch each")
    for days in sorted({1, args.days_per_step}):
        r = real_loop(n_codes, n_days, days, args.hidden[0])
        per_phase = ", ".join(f"{k.split('_')[1]} {v[0]:,.0f}" for k, v in r["samples_s"].items())
        print(
            f"D = {days}: {r['seconds']:.1f} s; samples/s per phase: {per_phase}; "
            f"losses finite: {r['finite']}"
        )
        for w in r["warnings"]:
            print(f"  warning: {w}")
        if not r["warnings"]:
            print("  no warnings")
    leaked = [m for m in ("kedro", "polars") if m in sys.modules]
    print(f"\nmodules outside the PyTorch stack imported: {leaked or 'none'}")
    if leaked:
        raise SystemExit(f"bench_gpu imported {leaked}: it must run with PyTorch alone")


if __name__ == "__main__":
    main()
