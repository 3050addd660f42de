"""Online robust scaler: per-feature median and MAD fitted on training dates in one pass.

Method. Every training row receives an independent uniform key ``u ~ U(0, 1)`` from a seeded
generator as it streams past, and the ``reservoir_size`` rows with the smallest keys are kept
(bottom-k sampling). This is a uniform sample without replacement over all training rows, whatever
order or chunking they arrive in; when the training period has at most ``reservoir_size`` rows the
reservoir holds every row and the statistics are exact. Each feature's statistics use the finite
values of the sampled rows, so a feature that is often missing is estimated from fewer values but
still uniformly over the period.

    median_f = median(x_f),   scale_f = 1.4826 * median(|x_f - median_f|)
    z = clip((x - median_f) / scale_f, -clip, clip),   NaN -> 0 after scaling

A feature whose MAD is 0 (e.g. mostly constant) falls back to its sample standard deviation, and to
1 when that is 0 too. The fitted statistics serialise to JSON and are reused unchanged for
validation, test and prediction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


class OnlineRobustScaler:
    """Median/MAD scaler fitted by ``partial_fit`` over row chunks of the training period.

    Args:
        columns: feature names, in the order of the last axis of ``transform``'s input.
        clip: scaled values are clipped to ``[-clip, clip]``.
        reservoir_size: rows kept in the uniform sample (exact statistics up to this many rows).
        seed: seed of the key generator; same seed and same row order give the same statistics.
    """

    def __init__(
        self,
        columns: Sequence[str],
        clip: float = 5.0,
        reservoir_size: int = 100_000,
        seed: int = 0,
    ) -> None:
        if len(set(columns)) != len(columns):
            raise ValueError(f"OnlineRobustScaler: duplicate columns in {list(columns)}")
        self.columns = list(columns)
        self.clip = float(clip)
        self.reservoir_size = int(reservoir_size)
        self.seed = int(seed)
        self.n_rows = 0
        self._rng = np.random.default_rng(seed)
        self._sample = np.empty((0, len(self.columns)), dtype=np.float32)
        self._keys = np.empty(0, dtype=np.float64)
        self._median: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._frozen = False
        self._loaded_sample_rows = 0

    # ------------------------------------------------------------------ fitting
    def partial_fit(self, table_chunk: Any) -> OnlineRobustScaler:
        """Add the rows of one chunk (pyarrow Table, polars DataFrame or array [n, F]).

        The caller passes training rows only, each row exactly once (see ``fit_from_parquet``).
        """
        if self._frozen:
            raise RuntimeError(
                "OnlineRobustScaler: statistics were loaded with from_dict; refit a new one"
            )
        values = self._as_matrix(table_chunk)
        n = int(values.shape[0])
        keys = self._rng.random(n)
        self.n_rows += n
        full = self._keys.size >= self.reservoir_size
        if full:
            # Only rows whose key beats the current k-th smallest can enter the sample.
            keep = keys < self._keys.max()
            values, keys = values[keep], keys[keep]
        sample = np.concatenate([self._sample, values])
        pooled_keys = np.concatenate([self._keys, keys])
        if pooled_keys.size > self.reservoir_size:
            kept = np.argpartition(pooled_keys, self.reservoir_size - 1)[: self.reservoir_size]
            sample, pooled_keys = sample[kept], pooled_keys[kept]
        self._sample, self._keys = sample, pooled_keys
        self._median = self._scale = None
        return self

    def fit_from_parquet(
        self, path: str | Path, train_dates: Iterable[dt.date | str]
    ) -> OnlineRobustScaler:
        """One pass over the row groups of a day-major Parquet file, training dates only.

        Reads ``Date`` plus ``columns`` (column projection), skips row groups whose Date statistics
        fall outside the training dates, and feeds each training row to ``partial_fit`` once.
        """
        days = np.unique(np.array([np.datetime64(d, "D") for d in train_dates]).astype(np.int64))
        if days.size == 0:
            raise ValueError(
                f"OnlineRobustScaler.fit_from_parquet({path}): no training dates given"
            )
        parquet = pq.ParquetFile(path)
        missing = [c for c in ["Date", *self.columns] if c not in parquet.schema_arrow.names]
        if missing:
            raise KeyError(f"features ({path}): missing column(s) {missing} for the scaler")
        date_field = parquet.schema_arrow.get_field_index("Date")
        for group in range(parquet.num_row_groups):
            stats = parquet.metadata.row_group(group).column(date_field).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = (np.datetime64(v, "D").astype(np.int64) for v in (stats.min, stats.max))
                if days[-1] < lo or days[0] > hi or not np.any((days >= lo) & (days <= hi)):
                    continue
            table = parquet.read_row_group(
                group, columns=["Date", *self.columns], use_threads=False
            )
            row_days = table.column("Date").cast(pa.date32()).cast(pa.int32()).to_numpy()
            in_train = np.isin(row_days, days)
            if in_train.any():
                self.partial_fit(table.filter(pa.array(in_train)))
        if self.n_rows == 0:
            raise ValueError(f"features ({path}): no rows on the {days.size} training dates")
        return self

    # --------------------------------------------------------------- statistics
    @property
    def sample_rows(self) -> int:
        """Rows in the reservoir (= n_rows when the statistics are exact)."""
        return self._loaded_sample_rows if self._frozen else int(self._sample.shape[0])

    @property
    def median_(self) -> np.ndarray:
        return self._finalise()[0]

    @property
    def scale_(self) -> np.ndarray:
        return self._finalise()[1]

    def _finalise(self) -> tuple[np.ndarray, np.ndarray]:
        """(median, scale), computed from the reservoir on first use."""
        if self._median is not None and self._scale is not None:
            return self._median, self._scale
        if self._sample.shape[0] == 0:
            raise RuntimeError(
                "OnlineRobustScaler: not fitted (call partial_fit or fit_from_parquet)"
            )
        sample = self._sample.astype(np.float64)
        finite = np.isfinite(sample)
        sample[~finite] = np.nan
        has_values = finite.any(axis=0)
        median = np.zeros(sample.shape[1])
        scale = np.ones(sample.shape[1])
        cols = np.flatnonzero(has_values)
        if cols.size:
            sub = sample[:, cols]
            med = np.nanmedian(sub, axis=0)
            mad = MAD_TO_SIGMA * np.nanmedian(np.abs(sub - med), axis=0)
            std = np.nanstd(sub, axis=0)
            fallback = np.where(std > 0, std, 1.0)
            median[cols] = med
            scale[cols] = np.where(mad > 0, mad, fallback)
        self._median, self._scale = median, scale
        return median, scale

    # ---------------------------------------------------------------- transform
    def transform(self, values: Any) -> np.ndarray:
        """Scale ``values`` [..., F] (or a table holding ``columns``) → float32, NaN → 0."""
        matrix = values if isinstance(values, np.ndarray) else self._as_matrix(values)
        if matrix.shape[-1] != len(self.columns):
            raise ValueError(
                f"OnlineRobustScaler.transform: last axis has {matrix.shape[-1]} features, "
                f"fitted on {len(self.columns)}"
            )
        median, scale = self.median_.astype(np.float32), self.scale_.astype(np.float32)
        z = (np.asarray(matrix, dtype=np.float32) - median) / scale
        np.clip(z, -self.clip, self.clip, out=z)
        z[np.isnan(z)] = 0.0
        return z

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted statistics (the sample itself is not kept)."""
        return {
            "kind": "OnlineRobustScaler",
            "columns": self.columns,
            "clip": self.clip,
            "reservoir_size": self.reservoir_size,
            "seed": self.seed,
            "n_rows": self.n_rows,
            "sample_rows": self.sample_rows,
            "exact": self.n_rows <= self.reservoir_size,
            "median": [float(v) for v in self.median_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> OnlineRobustScaler:
        """Rebuild a fitted scaler from ``to_dict``; it transforms but cannot be refitted."""
        scaler = cls(state["columns"], state["clip"], state["reservoir_size"], state["seed"])
        scaler.n_rows = int(state["n_rows"])
        scaler._loaded_sample_rows = int(state["sample_rows"])
        scaler._median = np.asarray(state["median"], dtype=np.float64)
        scaler._scale = np.asarray(state["scale"], dtype=np.float64)
        scaler._frozen = True
        return scaler

    def restricted_to(self, columns: Sequence[str]) -> OnlineRobustScaler:
        """A frozen copy for the fitted ``columns`` among those of this scaler (their statistics
        unchanged, this scaler's column order): a model reading some families of the table."""
        keep = [j for j, c in enumerate(self.columns) if c in set(columns)]
        state = self.to_dict()
        state |= {
            "columns": [self.columns[j] for j in keep],
            "median": [state["median"][j] for j in keep],
            "scale": [state["scale"][j] for j in keep],
        }
        return OnlineRobustScaler.from_dict(state)

    # ------------------------------------------------------------------ helpers
    def _as_matrix(self, table_chunk: Any) -> np.ndarray:
        if isinstance(table_chunk, np.ndarray):
            if table_chunk.ndim != 2 or table_chunk.shape[1] != len(self.columns):
                raise ValueError(
                    f"OnlineRobustScaler: expected an array [n, {len(self.columns)}], "
                    f"got {table_chunk.shape}"
                )
            return table_chunk.astype(np.float32, copy=False)
        table = table_chunk.to_arrow() if hasattr(table_chunk, "to_arrow") else table_chunk
        missing = [c for c in self.columns if c not in table.column_names]
        if missing:
            raise KeyError(f"OnlineRobustScaler: chunk lacks column(s) {missing}")
        matrix = np.empty((table.num_rows, len(self.columns)), dtype=np.float32)
        for j, name in enumerate(self.columns):
            matrix[:, j] = table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
        return matrix
