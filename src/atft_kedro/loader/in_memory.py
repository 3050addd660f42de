"""In-memory day batches: the whole feature table as dense arrays, a map-style Dataset.

The fast path for data that fits in memory and the baseline the streaming loader is measured
against. Rows are scattered into ``x [T, C, F]`` (T calendar days from the first requested window's
start to the last requested date, C distinct codes), with ``present [T, C]``; a window is then a
slice ``x[t − L + 1 : t + 1, stocks]``. Same batches, window rule and masks as ``StreamingDayDataset``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from torch.utils.data import Dataset

from atft_kedro.loader.day_batch import DayBatch, build_day_batch
from atft_kedro.loader.day_graph import EDGE_COLUMNS, decode_edges
from atft_kedro.loader.day_source import DayBatches
from atft_kedro.loader.day_table import FeatureTable, code_keys


class InMemoryDayDataset(DayBatches, Dataset):
    """Map-style: item i is the day batch of the i-th requested date (chronological).

    ``InMemoryDayDataset(source, dates, shuffle=, seed=, epoch=)`` (``DayBatches``;
    ``source.block_days`` does not apply). ``order()`` gives the epoch's visiting order:
    chronological, or a permutation by ``default_rng([seed, epoch])``.
    """

    def _prepare(self) -> None:
        targets = self.days
        self.first = max(int(targets[0]) - self.seq_len + 1, 0) if targets.size else 0
        last = int(targets[-1]) if targets.size else -1
        self.targets = targets - self.first  # positions in the dense arrays
        self.calendar = self.table.calendar[self.first : last + 1]
        parquet = self.table.open()
        groups = np.unique(self.table.group_of(np.arange(self.first, last + 1)))
        self.codes = _codes(parquet, groups)
        self.keys = code_keys(self.codes)
        self._fill(self.table, parquet, groups)
        self._load_edges(self.source.graph_edges_path)

    def _fill(self, table: FeatureTable, parquet: pq.ParquetFile, groups: np.ndarray) -> None:
        """Dense ``[T, C, ...]`` arrays of the row groups' days (absent rows: x 0, y NaN)."""
        t, c, f, h = self.calendar.size, self.codes.size, table.n_features, len(self.horizons)
        self.x = np.zeros((t, c, f), dtype=np.float32)
        self.present = np.zeros((t, c), dtype=bool)
        self.y = np.full((t, c, h), np.nan, dtype=np.float32)
        self.market = np.zeros((t, c), dtype=np.int64)
        self.sector33 = np.zeros((t, c), dtype=np.int64)
        for group in groups.tolist():
            for rows in table.read_row_group(parquet, group):
                day = int(np.searchsorted(self.calendar, rows.day))
                if day >= t or self.calendar[day] != rows.day:
                    continue
                idx = np.searchsorted(self.keys, rows.keys)
                self.x[day, idx], self.present[day, idx], self.y[day, idx] = rows.x, True, rows.y
                self.market[day, idx], self.sector33[day, idx] = rows.market, rows.sector33

    def _load_edges(self, path: str | Path | None) -> None:
        """Edges of the requested days as code indices, sorted by day, with per-day offsets."""
        empty = np.empty(0, np.int64)
        self.edge_src, self.edge_dst, self.edge_attr = empty, empty, np.empty((0, 3), np.float32)
        self.edge_offsets: np.ndarray = np.zeros(self.calendar.size + 1, dtype=np.int64)
        if path is None or self.codes.size == 0:
            return
        days, edges = decode_edges(
            pq.read_table(path, columns=list(EDGE_COLUMNS), use_threads=False)
        )
        if days.size > 1 and np.any(np.diff(days) < 0):
            raise ValueError(f"graph_edges ({path}): rows are not sorted by Date")
        src = np.clip(np.searchsorted(self.keys, edges.src), 0, self.keys.size - 1)
        dst = np.clip(np.searchsorted(self.keys, edges.dst), 0, self.keys.size - 1)
        keep = (self.keys[src] == edges.src) & (self.keys[dst] == edges.dst)
        keep &= np.isin(days, self.calendar[self.targets])
        self.edge_src, self.edge_dst, self.edge_attr = src[keep], dst[keep], edges.attr[keep]
        bounds: np.ndarray = np.r_[self.calendar, np.iinfo(np.int64).max]
        self.edge_offsets = np.searchsorted(days[keep], bounds)

    def order(self) -> list[int]:
        """Item order for this epoch (pass as ``sampler`` to a DataLoader)."""
        if self.shuffle:
            return np.random.default_rng([self.seed, self.epoch]).permutation(len(self)).tolist()
        return list(range(len(self)))

    def __len__(self) -> int:
        return int(self.targets.size)

    def __getitem__(self, item: int) -> DayBatch:
        t = int(self.targets[item])
        stocks = np.flatnonzero(self.present[t])
        if self.require_target:
            stocks = stocks[np.isfinite(self.y[t, stocks]).any(axis=1)]
        start = t - self.seq_len + 1
        pad = max(-start, 0)  # days before the first calendar day
        x = np.zeros((stocks.size, self.seq_len, self.x.shape[2]), dtype=np.float32)
        mask = np.zeros((stocks.size, self.seq_len), dtype=bool)
        x[:, pad:] = self.x[start + pad : t + 1, stocks].transpose(1, 0, 2)
        mask[:, pad:] = self.present[start + pad : t + 1, stocks].T
        position = np.full(self.codes.size, -1, dtype=np.int64)
        position[stocks] = np.arange(stocks.size)
        lo, hi = self.edge_offsets[t], self.edge_offsets[t + 1]
        src, dst = position[self.edge_src[lo:hi]], position[self.edge_dst[lo:hi]]
        keep = (src >= 0) & (dst >= 0)
        return build_day_batch(
            int(self.calendar[t]),
            self.codes[stocks],
            x,
            mask,
            self.y[t, stocks],
            market=self.market[t, stocks],
            sector33=self.sector33[t, stocks],
            horizons=self.horizons,
            edge_index=np.stack([src[keep], dst[keep]]),
            edge_attr=self.edge_attr[lo:hi][keep],
        )


def _codes(parquet: pq.ParquetFile, groups: np.ndarray) -> np.ndarray:
    """Sorted unique codes of the row groups ``groups``."""
    if groups.size == 0:
        return np.empty(0, str)
    codes = [
        parquet.read_row_group(g, columns=["Code"], use_threads=False)
        .column("Code")
        .to_numpy(zero_copy_only=False)
        for g in groups
    ]
    return np.unique(np.concatenate([np.asarray(c, dtype=str) for c in codes]))
