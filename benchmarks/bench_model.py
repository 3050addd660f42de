"""Forward + backward time of ATFT-GAT-FAN on one day batch on CPU, against a plain LSTM.

One day: N = 2,000 stocks, L = 20 days, F = 82 inputs, ~20 directed edges per stock. Both models use
the same hidden size and run in the same process, one after the other, with the same thread count;
the ratio full / LSTM is the figure to read (absolute times depend on the machine and its load).
Peak memory is the process RSS high-water mark above the level before each model's runs (sampled
every 2 ms by a background thread).

    .venv/bin/python benchmarks/bench_model.py [--hidden 64] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time

import psutil
import torch
from torch import nn

from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig
from atft_kedro.model.losses import pinball_loss

HORIZONS = (1, 5, 10, 20)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def day_batch(n: int, length: int, n_features: int, per_node: int, seed: int) -> dict:
    """A random day batch of the loader's shape (docs/contracts.md, "Day batch"); day ``seed``."""
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n).repeat_interleave(per_node)
    dst = (src + torch.randint(1, n, (src.numel(),), generator=g)) % n
    y = {h: torch.randn(n, generator=g) * 0.02 for h in HORIZONS}
    return {
        "x": torch.randn(n, length, n_features, generator=g),
        "mask": torch.ones(n, length, dtype=torch.bool),
        "y": y,
        "y_mask": {h: torch.ones(n, dtype=torch.bool) for h in HORIZONS},
        "static": {
            "market": torch.randint(0, 4, (n,), generator=g),
            "sector33": torch.randint(0, 34, (n,), generator=g),
        },
        "codes": [str(i) for i in range(n)],
        "date": dt.date(2024, 1, 4) + dt.timedelta(days=seed),
        "edge_index": torch.stack([src, dst]),
        "edge_attr": torch.rand(src.numel(), 3, generator=g),
    }


class PlainLSTM(nn.Module):
    """Baseline: LSTM over the raw window, last step → linear quantile head per horizon."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(HORIZONS) * len(QUANTILES))

    def forward(self, batch: dict) -> torch.Tensor:
        out, _ = self.lstm(batch["x"])
        q = self.head(out[:, -1]).view(-1, len(HORIZONS), len(QUANTILES))
        return q.sort(dim=-1).values


class PeakRSS:
    """Highest RSS seen while the block runs, minus RSS at entry (bytes)."""

    def __enter__(self) -> PeakRSS:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.extra = self.peak - self.start


def time_steps(step, repeats: int) -> list[float]:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--features", type=int, default=82)
    parser.add_argument("--edges-per-node", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = day_batch(args.n, args.length, args.features, args.edges_per_node, seed=0)
    taus = torch.tensor(QUANTILES)
    valid = torch.ones(args.n, dtype=torch.bool)

    baseline = PlainLSTM(args.features, args.hidden).train()

    def baseline_step() -> None:
        baseline.zero_grad(set_to_none=True)
        q = baseline(batch)
        sum(
            pinball_loss(q[:, i], batch["y"][h], valid, taus) for i, h in enumerate(HORIZONS)
        ).backward()

    model = ATFTGATFAN(
        ModelConfig(n_features=args.features, hidden=args.hidden, horizons=HORIZONS)
    ).train()
    loss_fn = ATFTLoss(LossConfig(rank_weight=0.1, sharpe_weight=0.1))

    def full_step() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(batch), batch)[0].backward()

    results = {}
    for name, step in (("plain LSTM", baseline_step), ("ATFT-GAT-FAN", full_step)):
        with PeakRSS() as memory:
            times = time_steps(step, args.repeats)
        ms = 1000 * statistics.median(times)
        results[name] = ms
        print(
            f"{name:<13} forward+backward: median {ms:8.1f} ms/batch (min {1000 * min(times):.1f}, "
            f"max {1000 * max(times):.1f}), {args.n / ms * 1000:10,.0f} samples/s, "
            f"peak RSS +{memory.extra / 2**20:,.0f} MiB"
        )
    print(
        f"N={args.n} L={args.length} F={args.features} H={args.hidden} "
        f"E={batch['edge_index'].shape[1]:,} threads={args.threads} repeats={args.repeats}; "
        f"full / LSTM time ratio = {results['ATFT-GAT-FAN'] / results['plain LSTM']:.1f}x; "
        f"load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
