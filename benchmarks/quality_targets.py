"""Model quality on several synthetic markets, against the baselines and two ceilings (issue 12).

For each seed, runs the default pipeline (`kedro run --params seed=S[,…]`: data_processing →
graph → training → reporting), keeps that run's evaluation and predictions under
benchmarks/results/quality/seed<S>/, and prints, on the pooled test days of every fold at h = 1:

* every model's mean daily RankIC with its CI95 (stationary block bootstrap over days);
* the final model's share of the observable ceiling (`structural`: ridge on the peer family of
  the true latent clusters) and of the oracle (the planted alpha);
* paired daily differences with their CI95: final − ridge, final − peer ridge, and each phase's
  gain over the previous one.

Then the targets, over the seeds together: the final model above ridge, HistGBR and momentum on
every seed; on the mean over seeds above the peer ridge, at >= 0.8 x the observable ceiling, with
the paired CI95 against ridge above 0 (each seed's days resampled on their own, the resampled
means averaged); the GAT phase's paired gain positive on the mean; the peer ridge within 15% of
the observable ceiling (the graph finds the clusters).

    .venv/bin/python benchmarks/quality_targets.py --seeds 42 1 2 3           # run, then report
    .venv/bin/python benchmarks/quality_targets.py --seeds 42 1 2 3 --read    # report saved runs
    .venv/bin/python benchmarks/quality_targets.py --seeds 42 --params "training.max_train_days_per_epoch=100"
    .venv/bin/python benchmarks/quality_targets.py --latest   # just the last `kedro run`'s outputs
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from atft_kedro.evaluation.bootstrap import mean_ci, mean_of_means_ci
from atft_kedro.evaluation.metrics import daily_ic

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
RESULTS = ROOT / "benchmarks" / "results" / "quality"
OUTPUTS = {
    "evaluation.json": DATA / "08_reporting" / "evaluation.json",
    "predictions.parquet": DATA / "07_model_output" / "predictions.parquet",
    "baseline_predictions.parquet": DATA / "07_model_output" / "baseline_predictions.parquet",
}
CEILING_SHARE = 0.8  # final / observable ceiling, mean over seeds
GRAPH_SHARE = 0.85  # peer ridge / observable ceiling, mean over seeds
MUST_BEAT_EVERY_SEED = ("ridge", "hgb", "momentum")
LABELS = {"structural": "structural (true clusters)", "peer_ridge": "peer ridge"}


def run_seed(seed: int, params: str | None) -> float:
    """`kedro run` for one seed; copies its outputs to RESULTS/seed<seed>. Returns seconds."""
    started = time.perf_counter()
    overrides = ",".join(p for p in (f"seed={seed}", params) if p)
    subprocess.run([sys.executable, "-m", "kedro", "run", "--params", overrides], cwd=ROOT,
                   check=True)  # fmt: skip
    folder = RESULTS / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in OUTPUTS.items():
        shutil.copy2(path, folder / name)
    seconds = time.perf_counter() - started
    (folder / "run.json").write_text(json.dumps({"seed": seed, "params": params,
                                                 "seconds": seconds}))  # fmt: skip
    return seconds


def fmt(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:+.{digits}f}"


def interval(lo: float, hi: float, digits: int = 4) -> str:
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


class SeedResult:
    """One seed's daily RankIC series per model label (h = 1, pooled test days)."""

    def __init__(self, folder: Path, horizon: int = 1):
        self.evaluation = json.loads((folder / "evaluation.json").read_text())
        self.final = self.evaluation["final_model"]
        model = pl.read_parquet(folder / "predictions.parquet")
        base = pl.read_parquet(folder / "baseline_predictions.parquet")
        pred, target = f"pred_{horizon}d", f"target_{horizon}d"
        self.daily: dict[str, pl.DataFrame] = {}
        for (phase,), part in model.group_by("phase", maintain_order=True):
            self.daily[f"atft/phase{phase}"] = daily_ic(part, pred, target).table
        for (name,), part in base.group_by("model", maintain_order=True):
            self.daily[name] = daily_ic(part, pred, target).table
        self.phases = sorted(k for k in self.daily if k.startswith("atft/"))

    def mean(self, label: str) -> float:
        return float(self.daily[label]["rank_ic"].mean()) if label in self.daily else math.nan

    def ci(self, label: str) -> tuple[float, float]:
        return mean_ci(self.daily[label]["rank_ic"].to_numpy()) if label in self.daily else (
            math.nan, math.nan)  # fmt: skip

    def paired(self, a: str, b: str) -> np.ndarray:
        """Daily RankIC(a) − RankIC(b) on the days both have."""
        both = self.daily[a].join(self.daily[b], on="Date", suffix="_b")
        return (both["rank_ic"] - both["rank_ic_b"]).to_numpy()


def seed_report(seed: int, r: SeedResult) -> None:
    days = r.daily[r.final].height
    print(f"\n## seed {seed}: {days} pooled test days, h = 1, final model {r.final}\n")
    print(f"{'model':<28} {'RankIC':>8}  {'CI95':<20}  paired vs final [CI95]")
    order = [*r.phases, "peer_ridge", "ridge", "hgb", "momentum", "reversal", "structural",
             "oracle"]  # fmt: skip
    for label in [k for k in order if k in r.daily]:
        name = f"{label} (final)" if label == r.final else LABELS.get(label, label)
        paired = ""
        if label != r.final:
            diff = r.paired(r.final, label)
            paired = f"{fmt(diff.mean())} {interval(*mean_ci(diff))}"
        print(f"{name:<28} {fmt(r.mean(label)):>8}  {interval(*r.ci(label)):<20}  {paired}")
    final = r.mean(r.final)
    for ceiling in ("structural", "oracle"):
        if ceiling in r.daily:
            print(f"final / {LABELS.get(ceiling, ceiling)}: {100 * final / r.mean(ceiling):.0f}%")
    for a, b in zip(r.phases[1:], r.phases[:-1], strict=True):
        diff = r.paired(a, b)
        print(f"gain {b} -> {a}: {fmt(diff.mean())} {interval(*mean_ci(diff))}")


def targets(results: dict[int, SeedResult]) -> None:
    seeds = list(results)
    mean = {
        label: float(np.mean([r.mean(label) for r in results.values()]))
        for label in ("peer_ridge", "ridge", "hgb", "momentum", "reversal", "structural", "oracle")
    }
    final = float(np.mean([r.mean(r.final) for r in results.values()]))
    print(f"\n## targets over seeds {seeds}\n")
    print("mean over seeds: " + ", ".join(
        [f"final {fmt(final)}"] + [f"{LABELS.get(k, k)} {fmt(v)}" for k, v in mean.items()]))  # fmt: skip

    losses = [(s, b) for s, r in results.items() for b in MUST_BEAT_EVERY_SEED
              if not r.mean(r.final) > r.mean(b)]  # fmt: skip
    print(f"1. final above {', '.join(MUST_BEAT_EVERY_SEED)} on every seed: "
          + ("MET" if not losses else "MISSED (" + ", ".join(f"seed {s}: {b}" for s, b in losses)
             + ")"))  # fmt: skip
    peer = [r.paired(r.final, "peer_ridge") for r in results.values()]
    print(f"2. mean over seeds above the peer ridge: {fmt(final)} vs {fmt(mean['peer_ridge'])}, "
          f"paired {fmt(np.mean([d.mean() for d in peer]))} {interval(*mean_of_means_ci(peer))}: "
          f"{'MET' if final > mean['peer_ridge'] else 'MISSED'}")  # fmt: skip
    share = final / mean["structural"]
    print(f"3. final / observable ceiling = {fmt(final)} / {fmt(mean['structural'])} = "
          f"{100 * share:.0f}% (target >= {100 * CEILING_SHARE:.0f}%): "
          f"{'MET' if share >= CEILING_SHARE else 'MISSED'}; final / oracle = "
          f"{100 * final / mean['oracle']:.0f}%")  # fmt: skip
    ridge = [r.paired(r.final, "ridge") for r in results.values()]
    lo, hi = mean_of_means_ci(ridge)
    print(f"4. paired final − ridge, mean over seeds: {fmt(np.mean([d.mean() for d in ridge]))} "
          f"{interval(lo, hi)}: {'MET' if lo > 0 else 'MISSED'}")  # fmt: skip
    gat = [r.paired("atft/phase2", "atft/phase1") for r in results.values()
           if {"atft/phase1", "atft/phase2"} <= set(r.daily)]  # fmt: skip
    if gat:
        gain = float(np.mean([d.mean() for d in gat]))
        print(f"5. GAT phase gain (2 − 1), paired, mean over seeds: {fmt(gain)} "
              f"{interval(*mean_of_means_ci(gat))}: {'MET' if gain > 0 else 'MISSED'}")  # fmt: skip
    graph = mean["peer_ridge"] / mean["structural"]
    per_seed = ", ".join(f"{r.mean('peer_ridge') / r.mean('structural'):.2f}"
                         for r in results.values())  # fmt: skip
    print(
        f"6. peer ridge / observable ceiling = {100 * graph:.0f}% (per seed {per_seed}; target "
        f">= {100 * GRAPH_SHARE:.0f}%): {'MET' if graph >= GRAPH_SHARE else 'MISSED'}"
    )


def markdown(results: dict[int, SeedResult]) -> None:
    """The README's table: one row per model, one column per seed, RankIC [CI95]."""
    seeds = list(results)
    print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    rows = ["final", "peer_ridge", "ridge", "hgb", "momentum", "structural", "oracle"]
    for label in rows:
        cells, means = [], []
        for r in results.values():
            key = r.final if label == "final" else label
            m, (lo, hi) = r.mean(key), r.ci(key)
            means.append(m)
            cells.append(f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        name = f"final model ({next(iter(results.values())).final})" if label == "final" else (
            LABELS.get(label, label))  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean(means):+.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--read", action="store_true", help="report the saved runs of the seeds")
    parser.add_argument("--latest", action="store_true", help="report the last `kedro run` only")
    parser.add_argument("--params", help="extra `kedro run --params` for every seed (say so)")
    parser.add_argument("--markdown", action="store_true", help="also print the README table")
    args = parser.parse_args()
    results: dict[int, SeedResult] = {}
    if args.latest:
        folder = RESULTS / "latest"
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in OUTPUTS.items():
            shutil.copy2(path, folder / name)
        seed_report(-1, SeedResult(folder))
        return
    for seed in args.seeds:
        if not args.read:
            print(f"seed {seed}: kedro run … {run_seed(seed, args.params):.0f} s", flush=True)
        results[seed] = SeedResult(RESULTS / f"seed{seed}")
        seed_report(seed, results[seed])
    targets(results)
    if args.markdown:
        markdown(results)


if __name__ == "__main__":
    main()
