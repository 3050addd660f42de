"""What ``training.days_per_step`` costs in quality and buys in time, paired on the same markets.

For each seed, runs the default pipeline once with D = 1 (``kedro run --params seed=S``), then
the training and reporting pipelines again for every other D on the same data
(``--pipelines training,reporting --params seed=S,training.days_per_step=D``). Each run's
evaluation and predictions are kept under benchmarks/results/days_per_step/seed<S>_d<D>/.
Prints, at h = 1 on the pooled test days, the final model's RankIC [CI95] per seed and D, the
paired daily difference D − 1 [CI95] per seed and over the seeds (each seed's days resampled on
their own), and the training seconds (sum over phases and folds of the epochs' train time).

    .venv/bin/python benchmarks/days_per_step.py --seeds 42 1 --days 1 4
    .venv/bin/python benchmarks/days_per_step.py --seeds 42 1 --days 1 4 --read
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_targets import OUTPUTS, ROOT, SeedResult, fmt, interval  # noqa: E402

from atft_kedro.evaluation.bootstrap import mean_ci, mean_of_means_ci  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "days_per_step"
METRICS = ROOT / "data" / "08_reporting" / "training_metrics"


def run(seed: int, days: int, first: bool) -> Path:
    """One run; its outputs and training seconds copied to RESULTS/seed<S>_d<D>."""
    params = f"seed={seed},training.days_per_step={days}"
    command = [sys.executable, "-m", "kedro", "run", "--params", params]
    if not first:
        command += ["--pipelines", "training,reporting"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    folder = RESULTS / f"seed{seed}_d{days}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in OUTPUTS.items():
        shutil.copy2(path, folder / name)
    seconds = sum(
        epoch["train_seconds"]
        for record in METRICS.glob("*.json")
        for epoch in json.loads(record.read_text())["epochs"]
    )
    (folder / "run.json").write_text(
        json.dumps({"seed": seed, "days_per_step": days, "train_seconds": seconds})
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--days", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--read", action="store_true", help="report the saved runs")
    args = parser.parse_args()
    days = sorted(set(args.days) | {1})
    if not args.read:
        for seed in args.seeds:
            for d in days:
                run(seed, d, first=d == 1)
                print(f"seed {seed}, D = {d}: done", flush=True)
    results = {(s, d): SeedResult(RESULTS / f"seed{s}_d{d}") for s in args.seeds for d in days}
    print(
        f"\n{'seed':>5} {'D':>3} {'final RankIC':>13}  {'CI95':<20} {'train s':>8}  "
        "paired D − 1 [CI95]"
    )
    for (s, d), r in results.items():
        seconds = json.loads((RESULTS / f"seed{s}_d{d}" / "run.json").read_text())["train_seconds"]
        paired = ""
        if d != 1:
            base = results[(s, 1)]
            diff = _paired(r, base)
            paired = f"{fmt(diff.mean())} {interval(*mean_ci(diff))}"
        print(
            f"{s:>5} {d:>3} {fmt(r.mean(r.final)):>13}  {interval(*r.ci(r.final)):<20} "
            f"{seconds:8.0f}  {paired}"
        )
    for d in days[1:]:
        diffs = [_paired(results[(s, d)], results[(s, 1)]) for s in args.seeds]
        print(
            f"D = {d} − D = 1, mean over seeds {args.seeds}: "
            f"{fmt(float(np.mean([x.mean() for x in diffs])))} "
            f"{interval(*mean_of_means_ci(diffs))}"
        )


def _paired(a: SeedResult, b: SeedResult) -> np.ndarray:
    """Daily RankIC of a's final model minus b's, on the days both have."""
    both = a.daily[a.final].join(b.daily[b.final], on="Date", suffix="_b")
    return (both["rank_ic"] - both["rank_ic_b"]).to_numpy()


if __name__ == "__main__":
    main()
