"""A day's stock graph as edges between batch positions.

``graph_edges`` (docs/contracts.md) holds one row per directed edge per Date, sorted by Date.
``DayGraphReader`` finds the row groups covering a range of dates from their Date statistics and
reads only those (keeping the last few decoded row groups), so a block of batches never reads the
whole file.
``edges_to_positions`` maps the codes of an edge list onto the positions of a batch's codes; edges
with an endpoint not in the batch are dropped. Codes are handled as ``code_keys`` (int64).
``edges_file`` gives the loader a graph_edges file for what the catalog holds (a path or a frame).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atft_kedro.loader.day_table import arrow_code_keys

EDGE_COLUMNS = ("Date", "src_code", "dst_code", "corr", "same_market", "same_sector33")
EDGE_ATTRIBUTES = ("corr", "same_market", "same_sector33")


@dataclass(frozen=True)
class DayEdges:
    """Directed edges of one day: src / dst code keys [E] int64, attr [E, 3] float32."""

    src: np.ndarray
    dst: np.ndarray
    attr: np.ndarray


EMPTY_EDGES = DayEdges(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 3), np.float32))


def edges_to_positions(edges: DayEdges, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges as positions in the batch's sorted code ``keys`` → (edge_index [2, E'], attr [E', 3]).

    Edges whose source or destination is not in the batch are dropped.
    """
    if edges.src.size == 0 or keys.size == 0:
        return np.empty((2, 0), np.int64), np.empty((0, 3), np.float32)
    src = np.clip(np.searchsorted(keys, edges.src), 0, keys.size - 1)
    dst = np.clip(np.searchsorted(keys, edges.dst), 0, keys.size - 1)
    keep = (keys[src] == edges.src) & (keys[dst] == edges.dst)
    return np.stack([src[keep], dst[keep]]).astype(np.int64), edges.attr[keep]


def decode_edges(table: pa.Table) -> tuple[np.ndarray, DayEdges]:
    """Day numbers [E] and edges of a graph_edges table."""
    days = table.column("Date").cast(pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)
    attr = np.empty((table.num_rows, 3), dtype=np.float32)
    for j, name in enumerate(EDGE_ATTRIBUTES):
        attr[:, j] = table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
    _, src = arrow_code_keys(table.column("src_code"))
    _, dst = arrow_code_keys(table.column("dst_code"))
    return days, DayEdges(src, dst, attr)


@dataclass(frozen=True)
class EdgeSpan:
    """The edges of a range of days, sorted by day: ``edges(day)`` is a slice (no reading)."""

    days: np.ndarray
    all_edges: DayEdges

    def edges(self, day: int) -> DayEdges:
        lo, hi = np.searchsorted(self.days, day), np.searchsorted(self.days, day, side="right")
        if hi == lo:
            return EMPTY_EDGES
        e = self.all_edges
        return DayEdges(e.src[lo:hi], e.dst[lo:hi], e.attr[lo:hi])


class DayGraphReader:
    """Per-date edge lookup in a Date-sorted graph_edges Parquet file.

    Only row-group metadata is read at construction; ``span(first, last)`` reads the row groups
    whose Date range meets ``first … last`` and caches the last ``cache_groups`` of them (the next
    chronological block shares its first row group with the previous one). Picklable (the file is opened
    lazily in the process that reads).
    """

    def __init__(self, path: str | Path, cache_groups: int = 2) -> None:
        self.path = str(path)
        self.cache_groups = cache_groups
        parquet = pq.ParquetFile(self.path)
        missing = [c for c in EDGE_COLUMNS if c not in parquet.schema_arrow.names]
        if missing:
            raise KeyError(f"graph_edges ({self.path}): missing column(s) {missing}")
        field = parquet.schema_arrow.get_field_index("Date")
        lo, hi = [], []
        for group in range(parquet.num_row_groups):
            stats = parquet.metadata.row_group(group).column(field).statistics
            if stats is not None and stats.has_min_max:
                first, last = np.datetime64(stats.min, "D"), np.datetime64(stats.max, "D")
            else:
                days = parquet.read_row_group(group, columns=["Date"], use_threads=False).column(
                    "Date"
                )
                days = days.cast(pa.date32()).to_numpy()
                first, last = days.min(), days.max()
            lo.append(int(first.astype(np.int64)))
            hi.append(int(last.astype(np.int64)))
        self.group_lo = np.asarray(lo, dtype=np.int64)
        self.group_hi = np.asarray(hi, dtype=np.int64)
        self._parquet: pq.ParquetFile | None = None
        self._cache: OrderedDict[int, tuple[np.ndarray, DayEdges]] = OrderedDict()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_parquet"], state["_cache"] = None, OrderedDict()
        return state

    def span(self, first: int, last: int) -> EdgeSpan:
        """The edges of days ``first … last`` (day numbers), read once for a streaming block."""
        groups = np.flatnonzero((self.group_lo <= last) & (self.group_hi >= first))
        parts = [self._group(int(g)) for g in groups]
        if not parts:
            return EdgeSpan(np.empty(0, np.int64), EMPTY_EDGES)
        days = np.concatenate([d for d, _ in parts])
        keep = (days >= first) & (days <= last)
        joined = DayEdges(
            *(
                np.concatenate([getattr(e, f) for _, e in parts])[keep]
                for f in ("src", "dst", "attr")
            )
        )
        return EdgeSpan(days[keep], joined)

    def _group(self, group: int) -> tuple[np.ndarray, DayEdges]:
        if group in self._cache:
            self._cache.move_to_end(group)
            return self._cache[group]
        if self._parquet is None:
            self._parquet = pq.ParquetFile(self.path)
        table = self._parquet.read_row_group(group, columns=list(EDGE_COLUMNS), use_threads=False)
        days, edges = decode_edges(table)
        if days.size > 1 and np.any(np.diff(days) < 0):
            raise ValueError(f"graph_edges ({self.path}): row group {group} is not sorted by Date")
        self._cache[group] = (days, edges)
        while len(self._cache) > self.cache_groups:
            self._cache.popitem(last=False)
        return days, edges


def edges_file(graph_edges: Any, folder: Path) -> Path | None:
    """A Date-sorted graph_edges Parquet path for the day loader (None: no graph).

    A path (or an object with ``.path``) is used as it is; a polars frame is written to ``folder``.
    """
    if graph_edges is None:
        return None
    if isinstance(graph_edges, str | Path):
        return Path(graph_edges)
    if hasattr(graph_edges, "path"):
        return Path(graph_edges.path)
    if graph_edges.height == 0:
        return None
    path = folder / "graph_edges.parquet"
    graph_edges.sort("Date", maintain_order=True).write_parquet(path, row_group_size=100_000)
    return path
