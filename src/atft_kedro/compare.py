"""Compare tracked runs: key parameters and the final model's RankIC [CI95] per run.

Every `kedro run` is one MLflow run in the project's store (conf/base/mlflow.yml). This lists the
last N of them, newest first, and draws the final model's pooled test RankIC at h = 1 under the
run's label (next-session entry by default) with its CI95 per run:

    python -m atft_kedro.compare                          # the last 10 runs
    python -m atft_kedro.compare --last 5 --plot runs.png # and the figure
    mlflow ui --backend-store-uri sqlite:///data/09_tracking/mlflow.db   # everything, in a browser
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import yaml

#: the project's tracking store, relative to the project root (an MLFLOW_TRACKING_URI set in the
#: environment takes its place)
TRACKING_DB = "data/09_tracking/mlflow.db"
#: parameters shown per run (flattened names as kedro-mlflow logs them)
KEY_PARAMS = (
    "seed",
    "label",
    "market.source",
    "market.preset",
    "phase",
    "training.days_per_step",
    "training.max_train_days_per_epoch",
)
FINAL = "final/h1/rank_ic"


def tracking_uri(project: Path) -> str:
    """The project's tracking store: $MLFLOW_TRACKING_URI, else its SQLite file (absolute)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(project / TRACKING_DB).resolve()}"


def tracking(project: Path) -> tuple[str, str]:
    """(tracking URI, experiment name) of the project (the name from conf/base/mlflow.yml)."""
    conf = yaml.safe_load((project / "conf" / "base" / "mlflow.yml").read_text())
    return tracking_uri(project), conf["tracking"]["experiment"]["name"]


def recent_runs(project: Path, last: int) -> list[dict[str, Any]]:
    """The last ``last`` runs of `kedro run` (not the HPO trials nested under one), newest first:
    id, start, status, key params, the final model, its RankIC at h = 1 and the CI95 bounds (None
    where not logged)."""
    import mlflow

    uri, experiment = tracking(project)
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id],
        "tags.mlflow.parentRunId IS NULL",
        order_by=["attributes.start_time DESC"],
        max_results=last,
    )
    return [
        {
            "run_id": run.info.run_id,
            "start": run.info.start_time,
            "status": run.info.status,
            "params": {k: run.data.params.get(k) for k in KEY_PARAMS},
            "final_model": run.data.tags.get("final_model"),
            "rank_ic": run.data.metrics.get(FINAL),
            "lo": run.data.metrics.get(f"{FINAL}_lo"),
            "hi": run.data.metrics.get(f"{FINAL}_hi"),
        }
        for run in runs
    ]


def table(runs: list[dict[str, Any]]) -> str:
    """Plain-text table, one row per run."""
    from datetime import datetime

    head = ["run", "started", "status", *KEY_PARAMS, "RankIC h1 [CI95]"]
    rows = []
    for r in runs:
        ic = (
            "—" if r["rank_ic"] is None else f"{r['rank_ic']:+.4f} [{r['lo']:+.4f}, {r['hi']:+.4f}]"
        )
        started = datetime.fromtimestamp(r["start"] / 1000).strftime("%Y-%m-%d %H:%M")
        params = [str(r["params"].get(k) or "—") for k in KEY_PARAMS]
        rows.append([r["run_id"][:8], started, r["status"], *params, ic])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True))
        for row in [head, *rows]
    ]
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """RankIC at h = 1 with its CI95 per run, oldest left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in reversed(runs) if r["rank_ic"] is not None and math.isfinite(r["rank_ic"])]
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(scored) + 2), 3.5))
    x = range(len(scored))
    y = [r["rank_ic"] for r in scored]
    err = [[r["rank_ic"] - r["lo"] for r in scored], [r["hi"] - r["rank_ic"] for r in scored]]
    ax.errorbar(x, y, yerr=err, fmt="o", capsize=4)
    ax.axhline(0.0, color="grey", lw=0.8)
    labels = [f"{r['run_id'][:8]}\nseed {r['params'].get('seed') or '?'}" for r in scored]
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("final model RankIC, h = 1")
    ax.set_title("Tracked runs: pooled test RankIC with CI95")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--last", type=int, default=10, help="how many runs (newest first)")
    parser.add_argument("--plot", type=Path, default=None, help="write the figure here (PNG)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project root")
    args = parser.parse_args(argv)
    runs = recent_runs(args.project, args.last)
    if not runs:
        print("no tracked runs yet: `kedro run` first")  # noqa: T201 (a command-line tool)
        return
    print(table(runs))  # noqa: T201 (a command-line tool)
    if args.plot:
        plot(runs, args.plot)
        print(f"figure: {args.plot}")  # noqa: T201 (a command-line tool)


if __name__ == "__main__":
    main()
