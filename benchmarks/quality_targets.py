"""Model quality on several synthetic markets, against the baselines and the ceilings (issue 22).

For each seed, runs the default pipeline (`kedro run --params seed=S[,…]`: data_processing →
graph → training → reporting), keeps that run's evaluation and predictions under
benchmarks/results/quality/seed<S>/, and prints, on the pooled test days of every fold at h = 1,
under the run's label (next-session entry by default: close t+1 → close t+2):

* every model's mean daily RankIC with its CI95 (stationary block bootstrap over days), and the
  net Sharpe of the quantile long-short book after `reporting.cost_bps` (10 bps);
* the final model (each fold's phase chosen on its validation days) against the observable
  ceiling (`structural`: ridge on the peer family of the true latent clusters, fitted to the same
  label) and the next-session oracle (`oracle_next`, the planted expected return);
* paired daily differences with their CI95: final − each baseline, and each phase's gain over the
  previous one (what FAN, the GAT and phases 3–4 add);
* what the final model captures of each planted effect (the report's attribution).

Then the targets over the seeds together: the final model above ridge, peer ridge, HistGBR and
momentum on every seed, with the paired CI95 against the best of them above 0 on the mean over
seeds (each seed's days resampled on their own, the resampled means averaged); at >= 0.8 x the
observable ceiling (stretch: >= 0.5 x the next-session oracle); its net Sharpe's CI95 above 0 on
the mean over seeds and above every baseline's.

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

from atft_kedro.evaluation.backtest import long_short_returns
from atft_kedro.evaluation.bootstrap import mean_ci, mean_of_means_ci, mean_of_sharpes_ci
from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.evaluation.selection import final_predictions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
RESULTS = ROOT / "benchmarks" / "results" / "quality"
OUTPUTS = {
    "evaluation.json": DATA / "08_reporting" / "evaluation.json",
    "predictions.parquet": DATA / "07_model_output" / "predictions.parquet",
    "baseline_predictions.parquet": DATA / "07_model_output" / "baseline_predictions.parquet",
}
CEILING_SHARE = 0.8  # final / observable ceiling, mean over seeds
ORACLE_SHARE = 0.5  # the stretch: final / next-session oracle, mean over seeds
MUST_BEAT_EVERY_SEED = ("ridge", "peer_ridge", "hgb", "momentum")
#: the baselines; `inputs_ridge` (ridge on the network's own input families) is shown, not a target
BASELINES = ("peer_ridge", "ridge", "inputs_ridge", "hgb", "momentum", "reversal")
CEILINGS = ("structural", "oracle_next", "oracle")
LABELS = {
    "structural": "structural (true clusters)",
    "peer_ridge": "peer ridge",
    "inputs_ridge": "ridge on the network's inputs",
    "oracle_next": "oracle_next (planted)",
    "atft/final": "final model",
}
COST_BPS = 10.0  # the report's default reporting.cost_bps
EFFECTS = ("regime_momentum", "earnings_drift", "investor_flow")


def run_seed(seed: int, params: str | None) -> float:
    """`kedro run` for one seed; copies its outputs to RESULTS/seed<seed>. Returns seconds."""
    started = time.perf_counter()
    overrides = ",".join(p for p in (f"seed={seed}", params) if p)
    subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--params", overrides], cwd=ROOT, check=True
    )
    folder = RESULTS / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in OUTPUTS.items():
        shutil.copy2(path, folder / name)
    seconds = time.perf_counter() - started
    (folder / "run.json").write_text(
        json.dumps({"seed": seed, "params": params, "seconds": seconds})
    )
    return seconds


def fmt(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:+.{digits}f}"


def interval(lo: float, hi: float, digits: int = 4) -> str:
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


class SeedResult:
    """One seed's daily RankIC and net long-short return per model (h = 1, pooled test days)."""

    def __init__(self, folder: Path, horizon: int = 1):
        self.evaluation = json.loads((folder / "evaluation.json").read_text())
        self.final = self.evaluation["final_model"]
        model = pl.read_parquet(folder / "predictions.parquet")
        base = pl.read_parquet(folder / "baseline_predictions.parquet")
        tables = {f"atft/phase{p}": part for (p,), part in model.group_by("phase")}
        if self.evaluation.get("final_choice"):
            tables[self.final] = final_predictions(model, self.evaluation["final_choice"])
        tables |= {name: part for (name,), part in base.group_by("model")}
        pred, target = f"pred_{horizon}d", f"target_{horizon}d"
        self.daily = {k: daily_ic(v, pred, target).table for k, v in tables.items()}
        self.net = {
            k: long_short_returns(v.sort("Date", "Code"), pred, target, cost_bps=COST_BPS)
            .daily["net"]
            .to_numpy()
            for k, v in tables.items()
        }
        self.phases = sorted(k for k in self.daily if k.startswith("atft/phase"))

    def mean(self, label: str) -> float:
        return float(self.daily[label]["rank_ic"].mean()) if label in self.daily else math.nan

    def ci(self, label: str) -> tuple[float, float]:
        return (
            mean_ci(self.daily[label]["rank_ic"].to_numpy())
            if label in self.daily
            else (math.nan, math.nan)
        )

    def sharpe(self, label: str) -> float:
        x = self.net.get(label, np.array([]))
        return float(x.mean() / x.std(ddof=1) * math.sqrt(252)) if x.size > 1 else math.nan

    def paired(self, a: str, b: str) -> np.ndarray:
        """Daily RankIC(a) − RankIC(b) on the days both have."""
        both = self.daily[a].join(self.daily[b], on="Date", suffix="_b")
        return (both["rank_ic"] - both["rank_ic_b"]).to_numpy()


def seed_report(seed: int, r: SeedResult) -> None:
    days = r.daily[r.final].height
    label = r.evaluation.get("label", "close")
    print(f"\n## seed {seed}: {days} pooled test days, h = 1, label {label}, final {r.final}\n")
    print(f"{'model':<28} {'RankIC':>8}  {'CI95':<20}  {'net Sharpe':>10}  paired vs final [CI95]")
    for name in [k for k in [*r.phases, r.final, *BASELINES, *CEILINGS] if k in r.daily]:
        paired = ""
        if name != r.final:
            diff = r.paired(r.final, name)
            paired = f"{fmt(diff.mean())} {interval(*mean_ci(diff))}"
        print(
            f"{LABELS.get(name, name):<28} {fmt(r.mean(name)):>8}  {interval(*r.ci(name)):<20}"
            f"  {fmt(r.sharpe(name), 2):>10}  {paired}"
        )
    final = r.mean(r.final)
    for ceiling in ("structural", "oracle_next"):
        if ceiling in r.daily:
            print(f"final / {LABELS.get(ceiling, ceiling)}: {100 * final / r.mean(ceiling):.0f}%")
    for a, b in zip(r.phases[1:], r.phases[:-1], strict=True):
        diff = r.paired(a, b)
        print(f"gain {b} -> {a}: {fmt(diff.mean())} {interval(*mean_ci(diff))}")
    choice = (r.evaluation.get("final_choice") or {}).get("folds", {})
    print(
        "final model's phase per fold (validation): "
        + ", ".join(f"fold {f}: phase {b['phase']}" for f, b in choice.items())
    )


def _mean(results: dict[int, SeedResult], label: str) -> float:
    return float(
        np.mean([r.mean(r.final if label == "final" else label) for r in results.values()])
    )


def targets(results: dict[int, SeedResult]) -> None:
    seeds = list(results)
    final = _mean(results, "final")
    mean = {k: _mean(results, k) for k in (*BASELINES, *CEILINGS)}
    print(f"\n## targets over seeds {seeds}\n")
    print(
        "mean over seeds: "
        + ", ".join(
            [f"final {fmt(final)}"] + [f"{LABELS.get(k, k)} {fmt(v)}" for k, v in mean.items()]
        )
    )
    losses = [
        (s, b)
        for s, r in results.items()
        for b in MUST_BEAT_EVERY_SEED
        if not r.mean(r.final) > r.mean(b)
    ]
    print(
        f"1. final above {', '.join(MUST_BEAT_EVERY_SEED)} on every seed: "
        + (
            "MET"
            if not losses
            else "MISSED (" + ", ".join(f"seed {s}: {b}" for s, b in losses) + ")"
        )
    )
    best = max(MUST_BEAT_EVERY_SEED, key=lambda k: mean[k])
    diffs = [r.paired(r.final, best) for r in results.values()]
    lo, hi = mean_of_means_ci(diffs)
    print(
        f"2. paired final − best of them ({LABELS.get(best, best)}), mean over seeds: "
        f"{fmt(np.mean([d.mean() for d in diffs]))} {interval(lo, hi)}: "
        f"{'MET' if lo > 0 else 'MISSED'}"
    )
    share = final / mean["structural"]
    per_seed = ", ".join(f"{r.mean(r.final) / r.mean('structural'):.2f}" for r in results.values())
    print(
        f"3. final / observable ceiling = {fmt(final)} / {fmt(mean['structural'])} = "
        f"{100 * share:.0f}% (per seed {per_seed}; target >= {100 * CEILING_SHARE:.0f}%): "
        f"{'MET' if share >= CEILING_SHARE else 'MISSED'}"
    )
    oracle = final / mean["oracle_next"]
    print(
        f"   stretch: final / next-session oracle = {100 * oracle:.0f}% (target >= "
        f"{100 * ORACLE_SHARE:.0f}%): {'MET' if oracle >= ORACLE_SHARE else 'MISSED'}"
    )
    sharpe = {
        k: float(np.mean([r.sharpe(r.final if k == "final" else k) for r in results.values()]))
        for k in ("final", *BASELINES)
    }
    lo, hi = mean_of_sharpes_ci([r.net[r.final] for r in results.values()])
    beaten = all(sharpe["final"] > sharpe[b] for b in BASELINES if b != "inputs_ridge")
    print(
        f"4. net Sharpe after {COST_BPS:g} bps, mean over seeds: final {fmt(sharpe['final'], 2)} "
        f"{interval(lo, hi, 2)}; "
        + ", ".join(f"{LABELS.get(b, b)} {fmt(sharpe[b], 2)}" for b in BASELINES)
        + f": CI95 above 0 {'MET' if lo > 0 else 'MISSED'}, above every baseline but inputs_ridge "
        f"{'MET' if beaten else 'MISSED'}"
    )
    book(results)
    print("5. what each phase adds, paired, mean over seeds:")
    for a, b in zip(PHASES[1:], PHASES[:-1], strict=True):
        gains = [r.paired(a, b) for r in results.values() if {a, b} <= set(r.daily)]
        if gains:
            print(
                f"   {b} -> {a}: {fmt(np.mean([g.mean() for g in gains]))} "
                f"{interval(*mean_of_means_ci(gains))}"
            )
    effects(results)


PHASES = [f"atft/phase{p}" for p in range(5)]


def book(results: dict[int, SeedResult]) -> None:
    """The report's book with turnover control (each fold's setting chosen on its validation
    days) and the JPX competition metric, per seed and mean over seeds."""
    print(
        "   with turnover control (report's `book`), net Sharpe per seed [CI95], mean; "
        "JPX metric (daily spread Sharpe), mean:"
    )
    for name in ("final", *BASELINES, "structural", "oracle_next"):
        sharpes, jpx, cells = [], [], []
        for r in results.values():
            key = r.final if name == "final" else name
            block = r.evaluation.get("book", {}).get("models", {}).get(key)
            pooled = r.evaluation["models"].get(key, {}).get("h1", {}).get("pooled", {})
            if block:
                sharpes.append(block["net"]["sharpe"])
                cells.append(
                    f"{fmt(block['net']['sharpe'], 2)} {interval(*block['net_sharpe_ci95'], 2)}"
                )
            if "jpx_metric" in pooled:
                jpx.append(pooled["jpx_metric"]["score"])
        if sharpes:
            print(
                f"   {LABELS.get(name, name):<26} {', '.join(cells)}; mean "
                f"{fmt(float(np.mean(sharpes)), 2)}; JPX {fmt(float(np.mean(jpx)), 3)}"
            )


def effects(results: dict[int, SeedResult]) -> None:
    """Mean over seeds of each planted effect's RankIC against the final model and oracle_next."""
    rows = [r.evaluation.get("attribution") for r in results.values()]
    if not all(rows):
        return
    print("6. what the final model captures (RankIC against each planted effect, mean over seeds):")
    for name in ("final", "peer_ridge", "structural", "oracle_next"):
        cells = []
        for effect in EFFECTS:
            values = [
                a["models"].get(r.final if name == "final" else name, {}).get(effect)
                for a, r in zip(rows, results.values(), strict=True)
            ]
            values = [v for v in values if v is not None]
            cells.append(f"{effect} {fmt(float(np.mean(values)), 3) if values else '—'}")
        print(f"   {LABELS.get(name, name):<24} " + ", ".join(cells))


def markdown(results: dict[int, SeedResult]) -> None:
    """The README's table: one row per model, one column per seed, RankIC [CI95]."""
    seeds = list(results)
    print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    rows = [
        "final",
        "peer_ridge",
        "ridge",
        "inputs_ridge",
        "hgb",
        "momentum",
        "structural",
        "oracle_next",
    ]
    for label in rows:
        cells, means = [], []
        for r in results.values():
            key = r.final if label == "final" else label
            m, (lo, hi) = r.mean(key), r.ci(key)
            means.append(m)
            cells.append(f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        name = (
            "final model (phase chosen on validation)"
            if label == "final"
            else (LABELS.get(label, label))
        )
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
