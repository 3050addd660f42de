"""How much of a single run's test RankIC is training noise?

Same market, data and configuration; only the global random stream differs. It draws K extra
numbers before each training epoch, so the dropout masks and the weight-average path change and
nothing else does. For each K the script runs `kedro run --pipelines training,reporting` in a
fresh process on the current `data/` (run `kedro run` once first) and prints the final model's
pooled test RankIC at h = 1. The mean and SD over the K values are the training noise of one run on
this market.

    .venv/bin/python benchmarks/training_noise.py --draws 0 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALUATION = ROOT / "data" / "08_reporting" / "evaluation.json"

CHILD = """
import sys
from pathlib import Path
import torch
import atft_kedro.training.steps as steps
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

draws = int(sys.argv[1])
epoch_loader = steps.epoch_loader

def shifted(data, max_days, epoch, num_workers=0):
    for _ in range(draws):
        torch.empty((), dtype=torch.int64).random_()
    return epoch_loader(data, max_days, epoch, num_workers)

steps.epoch_loader = shifted
bootstrap_project(Path.cwd())
with KedroSession.create(Path.cwd()) as session:
    session.run(pipeline_names=["training", "reporting"])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    finals = []
    for k in args.draws:
        subprocess.run(
            [sys.executable, "-c", CHILD, str(k)], cwd=ROOT, check=True, capture_output=True
        )
        evaluation = json.loads(EVALUATION.read_text())
        final = evaluation["final_model"]
        block = evaluation["models"][final]["h1"]["pooled"]
        finals.append(block["rank_ic"]["mean"])
        print(
            f"{k} extra draws: {final} RankIC {finals[-1]:.4f} {block['rank_ic_mean_ci95']}",
            flush=True,
        )
    if len(finals) > 1:
        print(f"mean {statistics.mean(finals):.4f}, SD {statistics.stdev(finals):.4f}")


if __name__ == "__main__":
    main()
