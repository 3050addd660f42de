"""One training epoch with a CPU-bound process beside it, against the same epoch alone (issue 23).

On a 2-core laptop with a browser open, torch's intra-op threads share a core with another
process. Each parallel region ends in a barrier that waits for the thread whose core is busy, so
an epoch can take many times its quiet time rather than about its share of the lost core. This
script runs one epoch (``--days`` AdamW steps of ATFT-GAT-FAN on random day batches of N stocks,
the `small` market's shape) in a fresh process, once with the machine as it is and once with a
busy-looping process started beside it, for each thread setting and OpenMP wait policy (the
project's default, set on import of ``atft_kedro``: PASSIVE; and ACTIVE, OpenMP's spinning
default), and prints busy / quiet.

    .venv/bin/python benchmarks/busy_machine.py                     # threads default, 1, 2
    .venv/bin/python benchmarks/busy_machine.py --threads default --policies default

Run it on an otherwise quiet machine: the ratio is the figure, and the target is <= 2x for the
project's default (``training.threads: null``, ``training.seeding.default_threads``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import atft_kedro  # first: it sets the OpenMP wait policy unless the environment has one
import sys, time, torch
sys.path.insert(0, {bench!r})
import bench_model
from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig
from atft_kedro.training.seeding import seed_everything
threads = None if {threads!r} == "default" else int({threads!r})
seed_everything(0, threads=threads)
batches = [bench_model.day_batch({n}, 20, {features}, 10, seed=d) for d in range(8)]
model = ATFTGATFAN(ModelConfig(n_features={features}, horizons=bench_model.HORIZONS)).train()
loss_fn = ATFTLoss(LossConfig(rank_weight=0.1))
optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
started = time.perf_counter()
for day in range({days}):
    optimiser.zero_grad(set_to_none=True)
    loss_fn(model(batches[day % 8]), batches[day % 8])[0].backward()
    optimiser.step()
print(time.perf_counter() - started, torch.get_num_threads())
"""


def epoch_seconds(threads: str, policy: str, days: int, n: int, features: int) -> tuple[float, int]:
    """Seconds for one epoch in a fresh interpreter, and the torch threads it used."""
    code = CHILD.format(bench=str(HERE), threads=threads, days=days, n=n, features=features)
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    seconds, used = done.stdout.split()[-2:]
    return float(seconds), int(used)


def with_busy_core(run):
    """``run()`` while one busy-looping process competes for a core."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        return run()
    finally:
        hog.kill()
        hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", nargs="+", default=["default", "1", "2"])
    parser.add_argument("--policies", nargs="+", default=["default", "ACTIVE"])
    parser.add_argument("--days", type=int, default=60, help="day batches (optimiser steps)")
    parser.add_argument("--stocks", type=int, default=300)
    parser.add_argument("--features", type=int, default=40)
    args = parser.parse_args()
    print(
        f"one epoch of {args.days} days, {args.stocks} stocks, F = {args.features}; "
        f"{os.cpu_count()} cores"
    )
    print(f"{'threads':<12}{'OpenMP wait':<14}{'quiet s':>9}{'busy s':>9}{'busy/quiet':>12}")
    size = (args.days, args.stocks, args.features)
    for policy in args.policies:
        for threads in args.threads:
            quiet, used = epoch_seconds(threads, policy, *size)
            busy, _ = with_busy_core(lambda t=threads, p=policy: epoch_seconds(t, p, *size))
            name = f"{threads} ({used})" if threads == "default" else threads
            wait = "PASSIVE" if policy == "default" else policy
            print(f"{name:<12}{wait:<14}{quiet:>9.1f}{busy:>9.1f}{busy / quiet:>11.2f}x")


if __name__ == "__main__":
    main()
