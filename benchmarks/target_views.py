"""Which target should the model train on? Each training target, scored under every view (issue 13).

For each seed and each `training.loader.target` (close | next_close | next_open), runs the default
pipeline (`kedro run --params seed=S,training.loader.target=T`), keeps its evaluation under
benchmarks/results/targets/seed<S>_<T>/, and prints the final model's mean daily RankIC at h = 1
on the pooled test days under each view (close to close, next-session close, next-session open,
investable universe), next to the peer ridge and the two oracles, then the mean over seeds.

    .venv/bin/python benchmarks/target_views.py --seeds 42 1 --targets close next_close
    .venv/bin/python benchmarks/target_views.py --seeds 42 1 --targets close next_close --read
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVALUATION = ROOT / "data" / "08_reporting" / "evaluation.json"
RESULTS = ROOT / "benchmarks" / "results" / "targets"
VIEWS = ("close", "next_close", "next_open", "investable")
REFERENCES = ("peer_ridge", "oracle", "oracle_next")


def run(seed: int, target: str, params: str | None) -> Path:
    """`kedro run` for one (seed, target); returns the saved evaluation's path."""
    out = RESULTS / f"seed{seed}_{target}" / "evaluation.json"
    overrides = ",".join(
        p for p in (f"seed={seed}", f"training.loader.target={target}", params) if p
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--params", overrides], cwd=ROOT, check=True
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EVALUATION, out)
    print(f"seed {seed} target {target}: {time.perf_counter() - started:.0f} s", flush=True)
    return out


def rank_ics(evaluation: dict, label: str) -> dict[str, float | None]:
    """Pooled mean daily RankIC at h = 1 of ``label`` under each view."""
    views = {"close": evaluation["models"], **evaluation.get("views", {})}
    return {
        v: views[v].get(label, {}).get("h1", {}).get("pooled", {}).get("rank_ic", {}).get("mean")
        for v in VIEWS
    }


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--targets", nargs="+", default=["close", "next_close"])
    parser.add_argument("--read", action="store_true", help="report the saved runs only")
    parser.add_argument("--params", help="extra `kedro run --params` for every run (say so)")
    args = parser.parse_args()

    rows: dict[str, list[dict[str, float | None]]] = {}
    for seed in args.seeds:
        for target in args.targets:
            path = RESULTS / f"seed{seed}_{target}" / "evaluation.json"
            if not args.read:
                path = run(seed, target, args.params)
            evaluation = json.loads(path.read_text())
            final = evaluation["final_model"]
            rows.setdefault(f"final, trained on {target}", []).append(rank_ics(evaluation, final))
            if target == args.targets[0]:
                for label in REFERENCES:
                    rows.setdefault(label, []).append(rank_ics(evaluation, label))
    print(f"\nMean daily RankIC at h = 1, pooled test days, mean over seeds {args.seeds}")
    print("| model | " + " | ".join(VIEWS) + " |")
    print("|---|" + "---|" * len(VIEWS))
    for label, per_seed in rows.items():
        cells = []
        for view in VIEWS:
            values = [r[view] for r in per_seed if r[view] is not None]
            per = " / ".join(fmt(r[view]) for r in per_seed)
            cells.append(f"{fmt(float(np.mean(values)) if values else None)} ({per})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
