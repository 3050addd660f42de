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

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from atft_kedro.loader.day_batch import DayBatch, build_day_batch, stocks_of_day, window_from_days
from atft_kedro.loader.day_graph import DayGraphReader, EdgeSpan, edges_to_positions
from atft_kedro.loader.day_table import DayRows, FeatureTable
from atft_kedro.loader.scaler import OnlineRobustScaler


class StreamingDayDataset(IterableDataset):
    """One day batch (docs/contracts.md, "Day batch") per requested trading date.

    Args:
        features_path: day-major features Parquet.
        dates: trading dates to emit (None = every date of the table). Context days before them
            come from the table's calendar whether requested or not.
        columns: model input columns (F), e.g. ``features.registry.model_input_names()``.
        horizons: target horizons h (``target_{h}d``).
        seq_len: window length L in trading days.
        scaler: fitted ``OnlineRobustScaler`` for the feature columns (masks pass through), or None.
        graph_edges_path: Date-sorted graph_edges Parquet, or None for no edges.
        shuffle, seed, epoch: training order (see module docstring); ``set_epoch`` changes epoch.
        require_target: keep only stocks with at least one finite target on day t.
        target, universe: which target view ``y`` holds and whether rows outside the investable
            universe lose their target (``FeatureTable``).
        block_days: requested days per read block (unit of worker sharding and of shuffling).
        vocabularies: static vocabularies; default ``market.taxonomy``.
    """

    def __init__(
        self,
        features_path: str | Path,
        dates: Sequence[dt.date | str] | None,
        *,
        columns: Sequence[str],
        horizons: Sequence[int],
        seq_len: int,
        scaler: OnlineRobustScaler | None = None,
        graph_edges_path: str | Path | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        require_target: bool = False,
        target: str = "close",
        universe: str = "all",
        block_days: int = 32,
        vocabularies: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        if seq_len < 1 or block_days < 1:
            raise ValueError(
                f"StreamingDayDataset: seq_len={seq_len}, block_days={block_days} must be ≥ 1"
            )
        self.table = FeatureTable(
            features_path, columns, horizons, scaler, vocabularies, target=target, universe=universe
        )
        self.seq_len = int(seq_len)
        self.horizons = self.table.horizons
        self.graph = DayGraphReader(graph_edges_path) if graph_edges_path is not None else None
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), int(epoch)
        self.require_target = bool(require_target)
        self.days = self.table.calendar_index(dates)
        self.blocks = self._cut_blocks(int(block_days))

    def set_epoch(self, epoch: int) -> None:
        """Select the training order of ``epoch`` (takes effect at the next ``iter``)."""
        self.epoch = int(epoch)

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
            needed = np.unique(days[:, None] - lookback[None, :])
            needed = set(needed[needed >= 0].tolist())
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
