"""Day-major Parquet: rows sorted by (Date, Code), each row group holding whole trading days.

The streaming loader reads one row group at a time and must never see half a day, so the writer
cuts row groups only at day boundaries. Writes are atomic (temporary sibling, then rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import polars as pl
import pyarrow.parquet as pq

from atft_kedro.atomic import atomic_path


def write_day_major_parquet(
    df: pl.DataFrame, path: str | Path, days_per_row_group: int = 20, compression: str = "zstd"
) -> None:
    """Write ``df`` sorted by (Date, Code) with ``days_per_row_group`` whole days per row group."""
    if days_per_row_group < 1:
        raise ValueError(f"days_per_row_group must be >= 1, got {days_per_row_group}")
    df = df.sort("Date", "Code")
    counts = df.group_by("Date", maintain_order=True).len()["len"].to_list()
    table = df.to_arrow()
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, table.schema, compression=compression) as writer:
            start = 0
            for i in range(0, len(counts), days_per_row_group):
                size = sum(counts[i : i + days_per_row_group])
                writer.write_table(table.slice(start, size), row_group_size=size)
                start += size
            if not counts:
                writer.write_table(table)


def check_day_major_parquet(path: str | Path) -> int:
    """Raise ``ValueError`` unless the file is sorted by (Date, Code) with whole days per row group.

    Returns the number of row groups.
    """
    pf = pq.ParquetFile(path)
    last_date = None
    for g in range(pf.num_row_groups):
        keys = cast(pl.DataFrame, pl.from_arrow(pf.read_row_group(g, columns=["Date", "Code"])))
        if keys.height == 0:
            continue
        if not keys.equals(keys.sort("Date", "Code")):
            raise ValueError(f"{path}: row group {g} is not sorted by (Date, Code)")
        first = keys["Date"][0]
        if last_date is not None and first <= last_date:
            raise ValueError(f"{path}: day {first} is split across row groups {g - 1} and {g}")
        last_date = keys["Date"][-1]
    return pf.num_row_groups
