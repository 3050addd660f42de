"""Streaming day batches: a torch IterableDataset over the day-major features Parquet.

Reading plan. The requested dates are cut into *blocks*: runs of consecutive row groups holding at
least ``block_days`` requested days. A block is read one row group at a time (column projection)
together with the ``L − 1`` calendar days before its first day, so a window never has a gap that its
mask does not show. Memory is bounded by one block plus its context, whatever the number of days.

Order. Evaluation (``shuffle=False``): each DataLoader worker takes a contiguous run of blocks and
emits its days chronologically, carrying the context from one block to the next; with
``num_workers=0`` the whole stream is chronological (with more workers, each worker's part is; every
batch carries its date). Training (``shuffle=True``): the block order is permuted by
``default_rng([seed, epoch])``, blocks are dealt to workers round-robin, and the days inside a block
are permuted by ``default_rng([seed, epoch, block])`` — reproducible per (seed, epoch), and the same
per-block order for any number of workers. Every requested day is emitted exactly once per epoch.

The dataset holds only metadata (paths, calendar, fitted scaler statistics): it pickles into
workers; each worker opens its own file handles and uses no Arrow thread pool (safe under fork).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from atft_kedro.loader.day_batch import DayBatch, build_day_batch, stocks_of_day, window_from_days
from atft_kedro.loader.day_graph import DayGraphReader, EdgeSpan, edges_to_positions
from atft_kedro.loader.day_source import DayBatches
from atft_kedro.loader.day_table import DayRows


class StreamingDayDataset(DayBatches, IterableDataset):
    """One day batch (docs/contracts.md, "Day batch") per requested trading date:
    ``StreamingDayDataset(source, dates, shuffle=, seed=, epoch=)`` (``DayBatches``; the training
    order is in the module docstring, blocks of ``source.block_days`` requested days)."""

    def _prepare(self) -> None:
        path = self.source.graph_edges_path
        self.graph = DayGraphReader(path) if path is not None else None
        self.blocks = self._cut_blocks(int(self.source.block_days))

    def __len__(self) -> int:
        return int(self.days.size)

    def _cut_blocks(self, block_days: int) -> list[np.ndarray]:
        """Requested calendar indices grouped into runs of whole row groups, ≥ block_days each."""
        groups = self.table.group_of(self.days)
        ends = np.flatnonzero(np.diff(groups)) + 1  # first requested day of each new row group
        blocks, start = [], 0
        for end in [*ends.tolist(), self.days.size]:
            if end - start >= block_days or end == self.days.size:
                blocks.append(self.days[start:end])
                start = end
        return [b for b in blocks if b.size]

    def block_plan(self, worker: int, num_workers: int) -> list[int]:
        """Blocks visited by ``worker`` of ``num_workers``, in visiting order."""
        n = len(self.blocks)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
            return order[worker::num_workers].tolist()
        owner = np.arange(n) * num_workers // max(n, 1)
        return np.flatnonzero(owner == worker).tolist()

    def __iter__(self) -> Iterator[DayBatch]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        parquet = self.table.open()
        held: dict[int, DayRows] = {}
        lookback = np.arange(self.seq_len - 1, -1, -1)
        for block in self.block_plan(worker, num_workers):
            days = self.blocks[block]
            window = np.unique(days[:, None] - lookback[None, :])
            needed = set(window[window >= 0].tolist())
            held = {i: rows for i, rows in held.items() if i in needed}  # context carried over
            missing = np.array(sorted(needed.difference(held)), dtype=np.int64)
            for group in np.unique(self.table.group_of(missing)).tolist():
                first = int(self.table.group_first[group])
                for offset, rows in enumerate(self.table.read_row_group(parquet, group)):
                    if first + offset in needed:
                        held[first + offset] = rows
            span = None
            if self.graph is not None:
                calendar = self.table.calendar
                span = self.graph.span(int(calendar[days.min()]), int(calendar[days.max()]))
            if self.shuffle:
                days = np.random.default_rng([self.seed, self.epoch, block]).permutation(days)
            for t in days.tolist():
                yield self._batch(t, held, span)

    def _batch(self, t: int, held: Mapping[int, DayRows], span: EdgeSpan | None) -> DayBatch:
        rows = held[t]
        keep = stocks_of_day(rows, self.require_target)
        codes, keys = rows.codes[keep], rows.keys[keep]
        context = [held[i] if i >= 0 else None for i in range(t - self.seq_len + 1, t + 1)]
        x, mask = window_from_days(context, keys, self.table.n_features)
        if span is not None:
            edge_index, edge_attr = edges_to_positions(span.edges(rows.day), keys)
        else:
            edge_index, edge_attr = np.empty((2, 0), np.int64), np.empty((0, 3), np.float32)
        return build_day_batch(
            rows.day,
            codes,
            x,
            mask,
            rows.y[keep],
            market=rows.market[keep],
            sector33=rows.sector33[keep],
            horizons=self.horizons,
            edge_index=edge_index,
            edge_attr=edge_attr,
        )
