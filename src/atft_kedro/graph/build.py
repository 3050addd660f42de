"""Daily point-in-time correlation graphs of the whole panel, with code ↔ node maps.

The graph of trading day t is built from returns up to and including t (known at the close of
t) and nothing later. The returns are first made residual to the day's common move
(``residualize``: the market mean or the code's sector mean of the same day), so that the
correlations show the co-movement that sectors and the market do not already explain. With ``rebuild_every = R`` a graph is built on every R-th trading day
(day index 0, R, 2R, … of the panel's calendar) and each day uses the last graph built on or
before it, restricted to the codes that have a row that day.

Dates are computed one at a time on the codes that qualify that day, so memory stays at a few
N × N float32 matrices (N ≈ 4,000 at J-Quants scale: ~200 MB), and a date's floating-point
result cannot depend on which other dates or codes would have shared a batch with it: a graph
is bit-for-bit the same whatever happens after its date.

A day whose graph has fewer than ``min_codes`` nodes (e.g. the first ``min_obs`` days, when no
code has enough history yet) gets an empty graph (no nodes, no edges) and a logged warning.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from atft_kedro.config import from_block
from atft_kedro.graph.correlation import Method, rolling_correlation
from atft_kedro.graph.knn import knn_edges
from atft_kedro.graph.returns import (
    Residualize,
    ReturnPanel,
    daily_log_returns,
    residual_returns,
    winsorize_returns,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphConfig:
    """Parameters of the graph (units in conf/base/parameters_graph.yml)."""

    residualize: Residualize = "sector33"
    beta_window: int | None = 250
    winsorize: float | None = 3.0
    lookback: int = 500
    min_obs: int = 80
    method: Method = "pearson"
    halflife: float = 20.0
    shrinkage: float = 0.1
    k: int = 10
    candidates: int | None = 20
    min_shared: float = 0.0
    threshold: float = 0.1
    rebuild_every: int = 5
    min_codes: int = 10
    threads: int | None = 1
    progress: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GraphConfig:
        config = from_block(cls, params, "graph")
        if config.rebuild_every < 1 or config.min_codes < 2:
            raise ValueError(
                f"params:graph: need rebuild_every >= 1 and min_codes >= 2; got "
                f"{config.rebuild_every}, {config.min_codes}"
            )
        return config


class GraphTables(NamedTuple):
    """graph_edges and graph_nodes (columns in docs/contracts.md)."""

    edges: pl.DataFrame
    nodes: pl.DataFrame


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (None: leave torch's setting alone)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _returns_in_window(returns: ReturnPanel, lookback: int) -> np.ndarray:
    """Number of returns [T, N] of each code in the window of each day (a rolling count)."""
    seen = np.cumsum(np.isfinite(returns.log_returns), axis=0, dtype=np.int32)
    seen[lookback:] -= seen[:-lookback].copy()
    return seen


class _DayGraph(NamedTuple):
    """One built graph: node codes [n] and directed edges as code indices [E] with ρ [E]."""

    nodes: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    corr: np.ndarray


class _GraphBuilder:
    """Builds the graph of a trading day from the returns of its window."""

    def __init__(self, returns: ReturnPanel, config: GraphConfig, build_days: np.ndarray):
        self.returns, self.config = returns, config
        self.series = torch.from_numpy(returns.log_returns)
        counts = _returns_in_window(returns, config.lookback)
        self.qualified = (counts >= config.min_obs) & returns.present
        widest = int(self.qualified[build_days].sum(axis=1).max(initial=0))
        self.workspace = torch.empty(widest * widest, dtype=torch.float32)  # reused every day

    def __call__(self, day: int) -> _DayGraph:
        config = self.config
        codes = np.flatnonzero(self.qualified[day])  # a row today and min_obs returns
        first = max(0, day - config.lookback + 1)
        corr, eligible = rolling_correlation(
            self.series[first : day + 1, codes],
            torch.tensor([day - first]),
            lookback=config.lookback,
            min_obs=config.min_obs,
            method=config.method,
            halflife=config.halflife,
            shrinkage=config.shrinkage,
            workspace=self.workspace,
        )
        found = knn_edges(
            corr,
            eligible,
            k=config.k,
            threshold=config.threshold,
            candidates=config.candidates,
            min_shared=config.min_shared,
            overwrite=True,
        )
        codes = codes.astype(np.int32)
        return _DayGraph(codes[eligible[0].numpy()], codes[found.src], codes[found.dst], found.corr)


def build_graphs(
    panel: pl.DataFrame, config: GraphConfig, *, dates_from: dt.date | None = None
) -> GraphTables:
    """Daily kNN correlation graphs of ``panel`` (Date, Code, close, market, sector33, …).

    ``dates_from`` limits the output to dates on or after it (earlier rows still feed the
    windows); the rebuild grid stays anchored on the panel's first date.
    """
    if panel.is_empty():
        raise ValueError("panel: no rows; the graph needs the panel of data_processing")
    returns = daily_log_returns(panel)
    series = winsorize_returns(
        residual_returns(returns, config.residualize, config.beta_window),
        config.winsorize,
        config.lookback,
    )
    n_days, every = len(returns.dates), config.rebuild_every
    # numpy's stubs take no datetime.date scalar (searchsorted compares it as an object)
    first = 0 if dates_from is None else int(np.searchsorted(np.array(returns.dates), dates_from))  # type: ignore[call-overload]
    days = np.arange(first, n_days)
    build = _GraphBuilder(series, config, np.unique((days // every) * every))
    dates = np.array(returns.dates, dtype="datetime64[D]")
    codes = pl.Series("Code", returns.codes, dtype=pl.Utf8)

    node_parts, edge_parts, empty_days = [], [], []
    graph = None
    with _torch_threads(config.threads):
        for day in tqdm(days, desc="graph", unit="date", disable=not config.progress):
            built_on = (day // every) * every  # the last build day on or before `day`
            if graph is None or day == built_on:
                graph = build(built_on)
            # a reused graph keeps the codes that still have a row today
            present = returns.present[day]
            nodes = graph.nodes[present[graph.nodes]]
            if len(nodes) < config.min_codes:
                empty_days.append(day)
                continue
            node_parts.append(_node_table(dates, codes, nodes, day, built_on))
            edge_parts.append(_edge_table(returns, codes, day, graph))

    if empty_days:
        _warn_empty_days(returns, config, empty_days, len(days))
    attributes = panel.select("Date", "Code", "market", "sector33", "sector17")
    nodes = _concat(node_parts, _NODE_SCHEMA).join(
        attributes, on=["Date", "Code"], how="left", maintain_order="left"
    )
    return GraphTables(edges=_concat(edge_parts, _EDGE_SCHEMA), nodes=nodes)


_NODE_SCHEMA = {"Date": pl.Date, "Code": pl.Utf8, "node_idx": pl.Int32, "built_on": pl.Date}
_EDGE_SCHEMA = {
    "Date": pl.Date,
    "src_code": pl.Utf8,
    "dst_code": pl.Utf8,
    "corr": pl.Float32,
    "same_market": pl.Int8,
    "same_sector33": pl.Int8,
}


def _node_table(
    dates: np.ndarray, codes: pl.Series, nodes: np.ndarray, day: int, built_on: int
) -> pl.DataFrame:
    """The nodes of ``day``'s graph (built on ``built_on``): Date, Code, node_idx, built_on, one
    row per node (``nodes``: code indices [K])."""
    return pl.DataFrame(
        {
            "Date": np.full(len(nodes), dates[day]),
            "Code": codes.gather(nodes),
            "node_idx": np.arange(len(nodes), dtype=np.int32),
            "built_on": np.full(len(nodes), dates[built_on]),
        }
    )


def _warn_empty_days(
    returns: ReturnPanel, config: GraphConfig, empty_days: list[int], n_days: int
) -> None:
    """Log how many of the ``n_days`` dates got an empty graph (too few codes), first and last."""
    logger.warning(
        "graph: %d of %d dates have fewer than min_codes=%d codes with >= min_obs=%d returns "
        "in the last %d days (first %s, last %s); their graphs are empty",
        len(empty_days),
        n_days,
        config.min_codes,
        config.min_obs,
        config.lookback,
        returns.dates[empty_days[0]],
        returns.dates[empty_days[-1]],
    )


def _edge_table(returns: ReturnPanel, codes: pl.Series, day: int, graph: _DayGraph) -> pl.DataFrame:
    """graph_edges rows of ``day``: the edges of ``graph`` between codes with a row that day."""
    present = returns.present[day]
    keep = present[graph.src] & present[graph.dst]
    src, dst = graph.src[keep], graph.dst[keep]
    same = {
        f"same_{name}": pl.Series((grid[day, src] == grid[day, dst]) & (grid[day, src] >= 0))
        for name, grid in returns.categories.items()
    }
    return pl.DataFrame(
        {
            "Date": np.full(len(src), np.datetime64(returns.dates[day], "D")),
            "src_code": codes.gather(src),
            "dst_code": codes.gather(dst),
            "corr": pl.Series(graph.corr[keep], dtype=pl.Float32),
            "same_market": same["same_market"].cast(pl.Int8),
            "same_sector33": same["same_sector33"].cast(pl.Int8),
        }
    )


def _concat(
    parts: list[pl.DataFrame], schema: Mapping[str, pl.DataType | type[pl.DataType]]
) -> pl.DataFrame:
    """Per-day frames as one table (kept in per-day chunks: no copy of the large edge list)."""
    return pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=schema)
