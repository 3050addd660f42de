"""Read J-Quants tables dropped in a folder (``data/01_raw/jquants/``), in either convention.

For each table name (``daily_quotes``, ``listed_info``, ``topix``, ``trades_spec``,
``statements``) the folder may hold ``<name>.parquet``, ``<name>.csv`` or ``<name>.csv.gz``, or a
sub-folder ``<name>/`` of such files (e.g. one per year or per day, as API downloads come). Each
file is mapped to the canonical schema on its own (so V1 and V2 files may be mixed), the files of a
table are concatenated, and the table is validated (``market.validation``). CSV is read as text
and cast by the schema, so codes such as ``0050`` or ``130A0`` survive.

``daily_quotes`` and ``listed_info`` are required; a missing optional table is logged and absent
from the result, and the features that need it are NaN with validity mask 0 downstream.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from atft_kedro.errors import UnreadableFileError, one_line
from atft_kedro.market.schema import (
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    TABLES,
    RawDataError,
    to_canonical,
)
from atft_kedro.market.validation import validate_tables

logger = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv", ".csv.gz")


def table_files(folder: Path, table: str) -> list[Path]:
    """The files holding ``table`` in ``folder``: one file or the files of a sub-folder."""
    single = [
        folder / f"{table}{suffix}"
        for suffix in SUFFIXES
        if (folder / f"{table}{suffix}").is_file()
    ]
    sub = folder / table
    many = (
        sorted(p for p in sub.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        if sub.is_dir()
        else []
    )
    found = single + ([sub] if many else [])
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise RawDataError(f"{table}: several sources in {folder} ({names}); keep one")
    return many or single


def read_table_file(path: Path) -> pl.DataFrame:
    """One Parquet or CSV file as delivered (CSV columns as text); a file that cannot be parsed
    raises UnreadableFileError naming it."""
    try:
        if path.name.endswith(".parquet"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, OSError) as err:
        raise UnreadableFileError(path, one_line(err)) from err


def read_table(folder: Path, table: str) -> pl.DataFrame | None:
    """The canonical (not yet validated) table, or None when the folder has no file for it."""
    files = table_files(folder, table)
    if not files:
        return None
    frames = []
    for path in files:
        try:
            frames.append(to_canonical(table, read_table_file(path)))
        except RawDataError as err:
            raise RawDataError(f"{err} [file {path}]") from None
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def read_jquants_dir(
    path: str | Path, required: tuple[str, ...] = REQUIRED_TABLES
) -> dict[str, pl.DataFrame]:
    """Read, map and validate every J-Quants table in ``path``.

    Args:
        path: folder such as ``data/01_raw/jquants``.
        required: tables that must be present (default ``daily_quotes``, ``listed_info``).

    Returns:
        {table: canonical validated frame} for the tables found; optional tables that are
        missing are absent (logged).
    """
    folder = Path(path)
    tables: dict[str, pl.DataFrame] = {}
    for table in TABLES:
        df = read_table(folder, table) if folder.is_dir() else None
        if df is not None:
            tables[table] = df
        elif table in required:
            expected = ", ".join(f"{table}{s}" for s in SUFFIXES)
            raise RawDataError(
                f"{table}: required table not found in {folder} (expected one of {expected} "
                f"or a folder {table}/ of such files)"
            )
        elif table in OPTIONAL_TABLES:
            logger.warning(
                "%s: not found in %s; its features will be NaN with validity mask 0", table, folder
            )
    logger.info("read J-Quants tables %s from %s", sorted(tables), folder)
    return validate_tables(tables)
