"""The search report: trial history, parameter importance, best trial vs the default configuration.

One self-contained HTML file through `atft_kedro.evaluation.report.render_report` (figures are
embedded PNGs). Figures are built without pyplot; empty input gives a figure that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from atft_kedro.evaluation.plots import empty_figure
from atft_kedro.evaluation.report import DEFINITIONS, format_cell, render_report

HPO_DEFINITIONS = {
    "Objective": "Best mean daily validation RankIC of the searched phase at the early-stopping "
    "horizon, over the epochs of that phase (the number training uses to keep `best`).",
    "Pruned": "Stopped by the median pruner: after an epoch its running validation RankIC was "
    "below the median of earlier trials at the same epoch.",
    "Importance": "fANOVA (Optuna): share of the objective's variance over completed trials "
    "explained by each parameter. Needs a few completed trials to mean anything.",
    "Best vs default": "The best trial and the untuned configuration, same seed, same fold, same "
    "validation days. CI95 of the gap: stationary block bootstrap of the paired daily differences.",
    "RankIC": DEFINITIONS["RankIC"],
    "CI95": DEFINITIONS["CI95"],
}


def trial_history(trials: pl.DataFrame) -> Figure:
    """Objective per trial (completed dots, best-so-far line; pruned trials as crosses)."""
    title = "Trial history"
    if trials.is_empty() or "value" not in trials.columns:
        return empty_figure(title, "no trials")
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    ax = fig.subplots()
    done = trials.filter(pl.col("state") == "COMPLETE").drop_nulls("value")
    if done.height:
        number, value = done["number"].to_numpy(), done["value"].to_numpy()
        ax.plot(number, value, "o", label="completed")
        ax.step(number, np.maximum.accumulate(value), where="post", label="best so far")
    pruned = trials.filter(pl.col("state") == "PRUNED")
    if pruned.height:
        ax.plot(
            pruned["number"].to_numpy(),
            np.zeros(pruned.height),
            "x",
            color="grey",
            label="pruned (plotted at 0)",
        )
    ax.set(title=title, xlabel="trial", ylabel="val mean RankIC")
    ax.legend(fontsize=8)
    return fig


def importance_bars(importance: Mapping[str, float], note: str = "") -> Figure:
    """Horizontal bars of parameter importance, largest on top."""
    title = "Parameter importance (fANOVA)"
    if not importance:
        return empty_figure(title, note or "not estimable")
    names = sorted(importance, key=lambda n: importance[n])
    fig = Figure(figsize=(7.0, 0.4 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, [importance[n] for n in names])
    ax.set(title=title, xlabel="share of objective variance")
    return fig


def daily_comparison(best: pl.DataFrame, default: pl.DataFrame) -> Figure:
    """Cumulative daily validation RankIC of the best trial and of the default configuration."""
    title = "Best trial vs default: cumulative daily val RankIC"
    if best.is_empty() and default.is_empty():
        return empty_figure(title)
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for label, frame in (("best trial", best), ("default", default)):
        frame = frame.sort("Date").drop_nulls()
        if frame.height:
            ax.plot(frame["Date"].to_list(), np.cumsum(frame["rank_ic"].to_numpy()), label=label)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set(title=title, ylabel="Σ daily RankIC")
    ax.legend(fontsize=8)
    return fig


def verdict(comparison: Mapping[str, Any], n_complete: int) -> str:
    """One sentence: the best trial's gain over default and whether its CI95 excludes zero."""
    gap, ci = comparison.get("gap_mean"), comparison.get("gap_ci95") or [None, None]
    if gap is None:
        return f"{n_complete} completed trial(s); no comparison with the default configuration."
    credible = ci[0] is not None and (ci[0] > 0 or ci[1] < 0)
    return (
        f"Best trial {format_cell(comparison.get('best_mean_rank_ic'))} vs default "
        f"{format_cell(comparison.get('default_mean_rank_ic'))} mean daily val RankIC over "
        f"{comparison['days']} days: gap {format_cell(gap)} CI95 {format_cell(ci)} — "
        + ("a credible difference." if credible else "not distinguishable from zero.")
    )


def render_hpo_report(
    trials: pl.DataFrame,
    importance: Mapping[str, float],
    importance_note: str,
    comparison: Mapping[str, Any],
    *,
    best_daily: pl.DataFrame,
    default_daily: pl.DataFrame,
    study_facts: Mapping[str, object],
) -> str:
    """The HTML report of a study (self-contained)."""
    n_complete = trials.filter(pl.col("state") == "COMPLETE").height if trials.height else 0
    rows = [
        {
            "configuration": label,
            "mean val RankIC": comparison.get(f"{key}_mean_rank_ic"),
            "CI95": comparison.get(f"{key}_ci95"),
        }
        for label, key in (("best trial", "best"), ("default", "default"))
    ]
    rows.append(
        {
            "configuration": "gap (best − default)",
            "mean val RankIC": comparison.get("gap_mean"),
            "CI95": comparison.get("gap_ci95"),
        }
    )
    table = trials.drop("datetime_start", strict=False).sort(
        "value", descending=True, nulls_last=True
    )
    return render_report(
        tables={
            "Best trial vs default (validation days)": rows,
            "Parameter importance": [
                {"parameter": k, "importance": v} for k, v in importance.items()
            ],
            "Trials (best first)": table.to_dicts(),
        },
        figures={
            "Objective per trial": trial_history(trials),
            "Parameter importance": importance_bars(importance, importance_note),
            "Daily validation RankIC, best trial vs default": daily_comparison(
                best_daily, default_daily
            ),
        },
        data_description=(study_facts, []),
        verdict_line=verdict(comparison, n_complete),
        title="Hyper-parameter search (Optuna)",
        definitions=HPO_DEFINITIONS,
    )
