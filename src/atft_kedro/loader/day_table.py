"""The day-major features Parquet seen as a calendar of days, read one row group at a time.

The features table (docs/contracts.md) is sorted by Date then Code and its row groups hold whole
days. ``FeatureTable`` learns, from the ``Date`` column alone, the trading calendar (the table's
distinct dates) and which calendar days each row group holds; ``read_row_group`` then decodes one
row group (column projection) into ``DayRows``: per day, the codes, scaled model inputs, targets and
static vocabulary indices. Dates are handled as int64 day numbers (days since 1970-01-01).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from atft_kedro.loader.scaler import OnlineRobustScaler

STATIC_COLUMNS = ("market", "sector33")
#: target view -> column prefix (``features.targets.VIEWS``; kept here so the loader needs no polars)
TARGET_PREFIX = {"close": "target", "next_close": "target_next", "next_open": "target_open"}
UNIVERSES = ("all", "investable")


def day_number(date: dt.date | str | np.datetime64) -> int:
    """Days since 1970-01-01 of a date (``datetime.date``, ISO string or datetime64)."""
    # numpy's overloads take a date, a str or a datetime64, not their union
    return int(np.datetime64(date, "D").astype(np.int64))  # type: ignore[call-overload]


def to_date(day: int) -> dt.date:
    return np.datetime64(int(day), "D").astype(dt.date)


def default_vocabularies() -> dict[str, Sequence[str]]:
    """Static vocabularies from ``atft_kedro.market.taxonomy`` (index = position + 1, 0 = unknown)."""
    from atft_kedro.market.taxonomy import MARKET_CODES, SECTOR33_CODES

    return {"market": MARKET_CODES, "sector33": SECTOR33_CODES}


def code_keys(codes: np.ndarray) -> np.ndarray:
    """Order-preserving int64 keys of stock codes (ASCII, at most 8 characters).

    Comparing and searching int64 keys is several times faster than comparing strings; the key
    order equals the string order, so a day's rows sorted by Code are sorted by key.
    """
    try:
        raw = np.asarray(codes, dtype=str).astype("S8")
    except UnicodeEncodeError as error:
        raise ValueError(f"stock codes must be ASCII; got {error.object!r}") from None
    if raw.size and np.char.str_len(np.asarray(codes, dtype=str)).max() > 8:
        raise ValueError(f"stock codes must have at most 8 characters; got e.g. {codes[0]!r}")
    return raw.view(">u8").astype(np.int64)


def arrow_code_keys(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(codes [n] str, code_keys [n])`` of an Arrow string column.

    Arrow dictionary-encodes the column (a C++ hash pass), so only the distinct codes, a few
    thousand, go through Python strings; converting every row's string was most of the streaming
    loader's time.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError("stock codes must not be null")
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    distinct = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=str)
    index = encoded.indices.to_numpy(zero_copy_only=False)
    return distinct[index], code_keys(distinct)[index]


def vocabulary_index(column: pa.ChunkedArray, vocabulary: Sequence[str]) -> np.ndarray:
    """Map a string column to ``position + 1`` in ``vocabulary``; null or unknown → 0."""
    index = pc.index_in(column.cast(pa.string()), value_set=pa.array(list(vocabulary), pa.string()))
    return pc.fill_null(pc.add(index, 1), 0).to_numpy().astype(np.int64)


@dataclass(frozen=True)
class DayRows:
    """The rows of one trading day. n = stocks with a row that day, sorted by code.

    codes [n] str, keys [n] int64 (``code_keys``), x [n, F] float32 scaled (NaN → 0),
    y [n, H] float32 (NaN kept), market / sector33 [n] int64 vocabulary indices.
    """

    day: int
    codes: np.ndarray
    keys: np.ndarray
    x: np.ndarray
    y: np.ndarray
    market: np.ndarray
    sector33: np.ndarray


class FeatureTable:
    """Calendar and row-group index of a day-major features Parquet file (metadata only).

    Holds no open file handle, so it pickles into DataLoader workers.

    Args:
        path: features Parquet (docs/contracts.md, "features").
        columns: model input columns, in order (F). Columns the scaler was fitted on are scaled;
            the others (validity masks) pass through as float32 with NaN → 0.
        horizons: target horizons h.
        scaler: fitted ``OnlineRobustScaler`` or None (no scaling).
        vocabularies: {"market": codes, "sector33": codes}; default from ``market.taxonomy``.
        target: which target view ``y`` holds (``TARGET_PREFIX``): ``close`` reads
            ``target_{h}d``, ``next_close`` ``target_next_{h}d``, ``next_open`` ``target_open_{h}d``.
        universe: ``all``, or ``investable``: ``y`` is NaN on rows outside the investable
            universe (``universe`` != 1), so they carry no loss and, with ``require_target``,
            leave the batch.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str],
        horizons: Sequence[int],
        scaler: OnlineRobustScaler | None = None,
        vocabularies: Mapping[str, Sequence[str]] | None = None,
        *,
        target: str = "close",
        universe: str = "all",
    ) -> None:
        self.path = str(path)
        self.columns = list(columns)
        self.horizons = [int(h) for h in horizons]
        if target not in TARGET_PREFIX:
            raise ValueError(f"loader target: {target!r}, want one of {list(TARGET_PREFIX)}")
        if universe not in UNIVERSES:
            raise ValueError(f"loader universe: {universe!r}, want one of {list(UNIVERSES)}")
        self.target_columns = [f"{TARGET_PREFIX[target]}_{h}d" for h in self.horizons]
        self.universe_column = ["universe"] if universe == "investable" else []
        # a scaler fitted on every feature of the table serves a model that reads some of them
        self.scaler = scaler.restricted_to(self.columns) if scaler is not None else None
        self.vocabularies = (
            dict(vocabularies) if vocabularies is not None else default_vocabularies()
        )
        parquet = pq.ParquetFile(self.path)
        names = parquet.schema_arrow.names
        needed = [
            "Date",
            "Code",
            *STATIC_COLUMNS,
            *self.columns,
            *self.target_columns,
            *self.universe_column,
        ]
        missing = [c for c in needed if c not in names]
        if missing:
            raise KeyError(f"features ({self.path}): missing column(s) {missing}")
        self._scaled_positions = _scaled_positions(self.scaler, self.columns)
        group_days = _row_group_days(parquet, self.path)
        self.calendar = np.concatenate(group_days) if group_days else np.empty(0, np.int64)
        """[T] int64 day numbers of the trading calendar, ascending."""
        sizes = np.array([d.size for d in group_days], dtype=np.int64)
        self.group_first = np.cumsum(sizes) - sizes
        """[G] calendar index of each row group's first day."""

    @property
    def n_features(self) -> int:
        return len(self.columns)

    def calendar_index(self, dates: Sequence[dt.date | str] | None) -> np.ndarray:
        """Calendar positions of ``dates`` (all days if None), ascending; unknown date → error."""
        if dates is None:
            return np.arange(self.calendar.size, dtype=np.int64)
        days = np.unique(np.array([day_number(d) for d in dates], dtype=np.int64))
        pos = np.searchsorted(self.calendar, days)
        found = pos < self.calendar.size
        found[found] = self.calendar[pos[found]] == days[found]
        if not found.all():
            raise KeyError(
                f"features ({self.path}): date {to_date(days[~found][0])} is not a trading day "
                "of the table"
            )
        return pos

    def group_of(self, index: np.ndarray) -> np.ndarray:
        """Row group holding each calendar index."""
        return np.searchsorted(self.group_first, index, side="right") - 1

    def open(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.path)

    def read_row_group(self, parquet: pq.ParquetFile, group: int) -> list[DayRows]:
        """Decode one row group into its days (column projection, no thread pool)."""
        table = parquet.read_row_group(
            group,
            columns=[
                "Date",
                "Code",
                *STATIC_COLUMNS,
                *self.columns,
                *self.target_columns,
                *self.universe_column,
            ],
            use_threads=False,
        )
        days = table.column("Date").cast(pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)
        codes, keys = arrow_code_keys(table.column("Code"))
        x = self._model_inputs(table)
        y = _float_matrix(table, self.target_columns)
        if self.universe_column:
            y[_float_matrix(table, self.universe_column)[:, 0] != 1] = np.nan
        market = vocabulary_index(table.column("market"), self.vocabularies["market"])
        sector = vocabulary_index(table.column("sector33"), self.vocabularies["sector33"])
        bounds = np.flatnonzero(np.diff(days)) + 1
        out = []
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, days.size], strict=True):
            day_keys = keys[lo:hi]
            if day_keys.size > 1 and not np.all(day_keys[1:] > day_keys[:-1]):
                bad = lo + int(np.flatnonzero(day_keys[1:] <= day_keys[:-1])[0]) + 1
                raise ValueError(
                    f"features ({self.path}): rows of {to_date(days[lo])} are not sorted by unique "
                    f"Code (Code {codes[bad]} after {codes[bad - 1]})"
                )
            out.append(
                DayRows(
                    int(days[lo]),
                    codes[lo:hi],
                    day_keys,
                    x[lo:hi],
                    y[lo:hi],
                    market[lo:hi],
                    sector[lo:hi],
                )
            )
        return out

    def _model_inputs(self, table: pa.Table) -> np.ndarray:
        x = _float_matrix(table, self.columns)
        if self.scaler is not None and self._scaled_positions is not None:
            x[:, self._scaled_positions] = self.scaler.transform(x[:, self._scaled_positions])
        x[~np.isfinite(x)] = 0.0  # unscaled columns (masks) may be null
        return x


def _float_matrix(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """Columns of ``table`` as a float32 matrix [n, len(columns)]; nulls → NaN."""
    out = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, name in enumerate(columns):
        out[:, j] = table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
    return out


def _scaled_positions(
    scaler: OnlineRobustScaler | None, columns: list[str]
) -> slice | np.ndarray | None:
    """Where the scaler's columns sit among the inputs: a slice when contiguous, else indices."""
    if scaler is None:
        return None
    positions = [columns.index(c) for c in scaler.columns]
    if positions and positions == list(range(positions[0], positions[0] + len(positions))):
        return slice(positions[0], positions[0] + len(positions))
    return np.array(positions, dtype=np.int64)


def _row_group_days(parquet: pq.ParquetFile, path: str) -> list[np.ndarray]:
    """Each row group's day numbers; raise unless groups hold whole days in Date order."""
    group_days = []
    for group in range(parquet.num_row_groups):
        dates = parquet.read_row_group(group, columns=["Date"], use_threads=False).column("Date")
        days = np.unique(dates.cast(pa.date32()).cast(pa.int32()).to_numpy()).astype(np.int64)
        group_days.append(days)
    flat = np.concatenate(group_days) if group_days else np.empty(0, np.int64)
    if flat.size and np.any(np.diff(flat) <= 0):
        bad = int(np.flatnonzero(np.diff(flat) <= 0)[0]) + 1
        raise ValueError(
            f"features ({path}): row groups must hold whole days in Date order; "
            f"day {to_date(flat[bad])} appears in two row groups or out of order"
        )
    return group_days
