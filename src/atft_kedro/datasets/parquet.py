"""Parquet datasets for polars tables, written atomically.

``PolarsParquetDataset`` loads and saves an eager ``pl.DataFrame``. ``DayMajorParquetDataset`` saves a
table sorted by (Date, Code) whose row groups hold whole trading days, and loads a ``DayMajorParquet``
handle rather than the data: the streaming loader reads it one row group at a time, and small
consumers call ``handle.read()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow.parquet as pq
from kedro.io import AbstractDataset, DatasetError

from atft_kedro.atomic import atomic_path
from atft_kedro.errors import UnreadableFileError, one_line
from atft_kedro.features.day_major import write_day_major_parquet

#: the codecs polars writes Parquet with
Compression = Literal["lz4", "uncompressed", "snappy", "gzip", "brotli", "zstd"]


class PolarsParquetDataset(AbstractDataset[pl.DataFrame, pl.DataFrame]):
    """An eager polars table in one Parquet file, written atomically."""

    def __init__(
        self, filepath: str, compression: Compression = "zstd", metadata: dict | None = None
    ):
        self._filepath = Path(filepath)
        self._compression = compression
        self.metadata = metadata

    def load(self) -> pl.DataFrame:
        if not self._filepath.exists():
            raise DatasetError(
                f"{self._filepath} does not exist: run the pipeline that makes it first"
            )
        try:
            return pl.read_parquet(self._filepath)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise UnreadableFileError(self._filepath, one_line(err)) from err

    def save(self, data: pl.DataFrame) -> None:
        with atomic_path(self._filepath) as tmp:
            data.write_parquet(tmp, compression=self._compression, statistics=True)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "compression": self._compression}


@dataclass(frozen=True)
class DayMajorParquet:
    """A day-major Parquet file: rows sorted by (Date, Code), row groups holding whole days."""

    path: Path

    def read(self, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self.path, columns=columns)

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)

    @property
    def columns(self) -> list[str]:
        return pq.read_schema(self.path).names

    @property
    def num_row_groups(self) -> int:
        return pq.ParquetFile(self.path).num_row_groups


class DayMajorParquetDataset(AbstractDataset[pl.DataFrame, DayMajorParquet]):
    """Save a (Date, Code) table as day-major Parquet; load a ``DayMajorParquet`` handle."""

    def __init__(
        self,
        filepath: str,
        days_per_row_group: int = 1,
        compression: str = "zstd",
        metadata: dict | None = None,
    ):
        if days_per_row_group < 1:
            raise ValueError("days_per_row_group must be >= 1")
        self._filepath = Path(filepath)
        self._days_per_row_group = days_per_row_group
        self._compression = compression
        self.metadata = metadata

    def load(self) -> DayMajorParquet:
        if not self._filepath.exists():
            raise DatasetError(
                f"{self._filepath} does not exist: run the pipeline that makes it first"
            )
        try:  # the footer, so that a truncated file fails here and names itself
            pq.read_metadata(self._filepath)
        except (OSError, ValueError) as err:  # pyarrow.ArrowInvalid is a ValueError
            raise UnreadableFileError(self._filepath, one_line(err)) from err
        return DayMajorParquet(self._filepath)

    def save(self, data: pl.DataFrame) -> None:
        write_day_major_parquet(data, self._filepath, self._days_per_row_group, self._compression)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "days_per_row_group": self._days_per_row_group}
