"""Report figures. Each function takes plain data (dicts, arrays, polars frames) and returns a
``matplotlib.figure.Figure`` built without pyplot (no global state, Agg rendering, safe in
workers). Empty input gives a figure that says so, never an exception, so a report always renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

WIDE, TALL = (9.0, 4.0), (9.0, 5.5)


def _figure(size: tuple[float, float] = WIDE) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def empty_figure(title: str, message: str = "no data") -> Figure:
    fig, ax = _figure((6.0, 2.0))
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_axis_off()
    return fig


def cumulative_returns(
    returns: Mapping[str, pl.DataFrame], title: str = "Long-short cumulative return"
) -> Figure:
    """``returns[label]`` has Date, gross, net (per-period returns): compounded wealth − 1,
    gross solid and net dashed in the same colour."""
    if not returns:
        return empty_figure(title)
    fig, ax = _figure()
    for i, (label, df) in enumerate(returns.items()):
        df = df.sort("Date").drop_nulls(["gross", "net"])
        for kind, style in (("gross", "-"), ("net", "--")):
            wealth = np.cumprod(1.0 + df[kind].to_numpy()) - 1.0
            ax.plot(
                df["Date"].to_list(), wealth, style, color=f"C{i % 10}", label=f"{label} ({kind})"
            )
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set(title=title, ylabel="cumulative return")
    ax.legend(fontsize=7, ncol=2)
    return fig


def rolling_rank_ic(
    daily: Mapping[str, pl.DataFrame], window: int = 20, title: str | None = None
) -> Figure:
    """``daily[label]`` has Date, rank_ic: its trailing ``window``-day mean per model."""
    title = title or f"Rolling {window}-day mean RankIC"
    if not daily:
        return empty_figure(title)
    fig, ax = _figure()
    for i, (label, df) in enumerate(daily.items()):
        df = df.sort("Date").drop_nulls("rank_ic")
        roll = df["rank_ic"].rolling_mean(window, min_samples=max(1, window // 2))
        ax.plot(df["Date"].to_list(), roll.to_numpy(), color=f"C{i % 10}", label=label)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set(title=title, ylabel="RankIC")
    ax.legend(fontsize=7, ncol=2)
    return fig


def ic_over_time(daily: pl.DataFrame, title: str = "Daily IC and RankIC") -> Figure:
    """``daily`` has Date, ic, rank_ic: daily RankIC as bars, IC as points."""
    daily = daily.drop_nulls(["ic", "rank_ic"]).sort("Date")
    if daily.height == 0:
        return empty_figure(title)
    fig, ax = _figure()
    dates = daily["Date"].to_list()
    ax.bar(dates, daily["rank_ic"].to_numpy(), width=1.0, color="C0", alpha=0.6, label="RankIC")
    ax.plot(dates, daily["ic"].to_numpy(), ".", ms=2, color="C3", label="IC")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set(title=title, ylabel="correlation")
    ax.legend(fontsize=7)
    return fig


def decile_bars(
    deciles: Mapping[str, Sequence[float]], title: str = "Mean target by prediction decile"
) -> Figure:
    """``deciles[label]`` = mean return per decile (0 = lowest prediction): grouped bars."""
    bars = {k: np.asarray(v, dtype=float) for k, v in deciles.items() if len(v)}
    if not bars:
        return empty_figure(title)
    fig, ax = _figure()
    width = 0.8 / len(bars)
    for i, (label, values) in enumerate(bars.items()):
        x = np.arange(values.size) + (i - (len(bars) - 1) / 2) * width
        ax.bar(x, values * 1e4, width=width, color=f"C{i % 10}", label=label)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set(title=title, xlabel="decile (0 = lowest prediction)", ylabel="mean target (bps)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _heatmap(
    values: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, xlabel: str
) -> Figure:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return empty_figure(title)
    fig, ax = _figure((7.0, 1.2 + 0.3 * len(rows)))
    image = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white")
    ax.set(title=title, xlabel=xlabel)
    fig.colorbar(image, ax=ax)
    return fig


def fan_window_weights(
    weights: np.ndarray, groups: Sequence[str], windows: Sequence[int]
) -> Figure:
    """FAN mixture weights α [groups, 1 + windows] (rows sum to 1), averaged over stocks and days.

    Column 0 is the raw (unnormalised) series, then one column per window; `windows` may list the
    windows only (the "raw" label is added) or every column.
    """
    weights = np.asarray(weights, dtype=float)
    labels = [str(w) for w in windows]
    if weights.ndim == 2 and weights.shape[1] == len(labels) + 1:
        labels = ["raw", *labels]
    return _heatmap(
        weights, groups, labels, "FAN candidate weights by feature group", "raw / window (days)"
    )


def san_slice_weights(weights: np.ndarray, groups: Sequence[str]) -> Figure:
    """SAN per-slice weights [groups, K] (slice 0 = oldest part of the window)."""
    weights = np.asarray(weights, dtype=float)
    slices = [f"slice {k}" for k in range(weights.shape[-1])] if weights.ndim == 2 else []
    return _heatmap(weights, groups, slices, "SAN slice weights by feature group", "slice")


def variable_importance(
    importance: Mapping[str, float], top_k: int = 30, title: str = "Variable-selection weights"
) -> Figure:
    """Mean variable-selection softmax weight per feature, the ``top_k`` largest."""
    if not importance:
        return empty_figure(title)
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top_k][::-1]
    fig, ax = _figure((7.0, 1.0 + 0.22 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
    ax.tick_params(axis="y", labelsize=7)
    ax.set(title=title, xlabel="mean weight")
    return fig


def gat_attention_by_edge_type(
    same_sector: np.ndarray, other: np.ndarray, title: str = "GAT attention by edge type"
) -> Figure:
    """Distributions of attention coefficients on same-sector33 edges vs all other edges."""
    groups = [np.asarray(a, float)[np.isfinite(a)] for a in (same_sector, other)]
    if not all(g.size for g in groups):
        return empty_figure(title)
    fig, ax = _figure((6.0, 4.0))
    ax.boxplot(groups, tick_labels=["same sector", "other"], showfliers=False)
    for i, g in enumerate(groups, start=1):
        ax.plot(i, g.mean(), "D", color="C3")
    ax.set(title=f"{title} (◆ = mean)", ylabel="attention coefficient")
    return fig


def graph_statistics(stats: pl.DataFrame, title: str = "Correlation graph over time") -> Figure:
    """``stats`` has Date and numeric columns (e.g. mean_degree, same_sector_share): one panel each."""
    cols = [c for c, t in stats.schema.items() if c != "Date" and t.is_numeric()]
    if stats.height == 0 or not cols:
        return empty_figure(title)
    fig = Figure(figsize=(9.0, 1.8 * len(cols) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(cols), 1, sharex=True))
    stats = stats.sort("Date")
    for ax, col in zip(axes, cols, strict=True):
        ax.plot(stats["Date"].to_list(), stats[col].to_numpy(), color="C0")
        ax.set_ylabel(col, fontsize=8)
    axes[0].set_title(title)
    return fig


def training_curves(
    history: Mapping[str, pl.DataFrame], title: str = "Training per phase"
) -> Figure:
    """``history[phase]`` has epoch and any of train_loss, val_loss, val_rank_ic: loss on the
    left panel, validation RankIC on the right, one colour per phase."""
    if not history:
        return empty_figure(title)
    fig = Figure(figsize=TALL, layout="constrained")
    ax_loss, ax_ic = fig.subplots(1, 2)
    for i, (phase, df) in enumerate(history.items()):
        colour = f"C{i % 10}"
        for col, style in (("train_loss", "-"), ("val_loss", "--")):
            if col in df.columns:
                ax_loss.plot(
                    df["epoch"].to_numpy(),
                    df[col].to_numpy(),
                    style,
                    color=colour,
                    label=f"{phase} {col}",
                )
        if "val_rank_ic" in df.columns:
            ax_ic.plot(
                df["epoch"].to_numpy(),
                df["val_rank_ic"].to_numpy(),
                "o-",
                color=colour,
                label=str(phase),
            )
    ax_loss.set(title="loss", xlabel="epoch")
    ax_ic.set(title="validation RankIC", xlabel="epoch")
    for ax in (ax_loss, ax_ic):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def universe_size(sizes: pl.DataFrame, title: str = "Universe size per test day") -> Figure:
    """``sizes`` has Date, stocks, investable (counts per day): one line each."""
    if sizes.height == 0:
        return empty_figure(title)
    fig, ax = _figure((9.0, 3.0))
    sizes = sizes.sort("Date")
    for i, col in enumerate(("stocks", "investable")):
        ax.plot(sizes["Date"].to_list(), sizes[col].to_numpy(), color=f"C{i}", label=col)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("stocks")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def view_rank_ic(
    values: Mapping[str, Mapping[str, tuple[float | None, list | None]]], title: str
) -> Figure:
    """``values[model][view] = (mean RankIC, [lo, hi])``: grouped bars with CI95 whiskers."""
    models = list(values)
    views = list(dict.fromkeys(v for per in values.values() for v in per))
    if not models or not views:
        return empty_figure(title)
    fig, ax = _figure((max(6.0, 0.9 * len(models) + 2.0), 3.6))
    width = 0.8 / len(views)
    x = np.arange(len(models))
    for j, view in enumerate(views):
        mean = np.array([_num(values[m].get(view, (None, None))[0]) for m in models])
        ci = [values[m].get(view, (None, None))[1] or [None, None] for m in models]
        lo = np.array([_num(c[0]) for c in ci])
        hi = np.array([_num(c[1]) for c in ci])
        err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
        ax.bar(
            x + (j - (len(views) - 1) / 2) * width,
            mean,
            width,
            yerr=np.nan_to_num(err),
            color=f"C{j}",
            label=view,
            capsize=2,
        )
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xticks(x, models, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean daily RankIC")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")
