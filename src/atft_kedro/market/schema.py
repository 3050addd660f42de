"""Canonical J-Quants tables and the mapping from either column convention.

J-Quants data reaches users in two conventions: exports of the V1 API (long names such as
``AdjustmentClose``, ``Sector33Code``) and the V2 API (short names such as ``AdjC``, ``S33``: what
``jquants-api-client`` 2.x ``ClientV2`` returns). The canonical schema is the V1 one
(docs/contracts.md). :func:`to_canonical` detects the convention of a frame from its column names,
renames, adds absent optional columns as nulls, keeps the canonical columns in canonical order and
casts them:

- dates (``pl.Date``) from ISO strings, ``YYYYMMDD`` strings or integers, datetimes;
- codes (``pl.Utf8``, 5 characters): integers become strings, 4-character codes get a trailing
  ``0``, alphanumeric codes (``130A0``) are kept as they are;
- numbers (``pl.Float64``) from numbers or strings, where ``""`` and ``"-"`` mean missing (V1
  statements deliver every number as a string);
- digit-only category codes are zero-padded (``MarketCode`` 111 → ``0111``, ``Sector33Code`` 50 →
  ``0050``), undoing the integer parsing that spreadsheets and CSV readers apply.

A value that cannot be cast raises :class:`RawDataError` with one line naming the table, the column,
how many values failed and the first offending row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

from atft_kedro.errors import UserError

Convention = Literal["V1", "V2"]
Kind = Literal["date", "code", "float", "str", "time"]

MISSING_TOKENS = ("", "-", "－")  # how J-Quants and spreadsheets spell a missing number


class RawDataError(UserError, ValueError):
    """Raw input that cannot be used: one line naming table, column and an example row."""


@dataclass(frozen=True)
class Column:
    """One canonical column: its V1 (canonical) name, V2 short name, kind and whether required."""

    name: str
    v2: str
    kind: Kind
    required: bool = True
    v1_aliases: tuple[str, ...] = ()  # other V1 spellings (statements: LocalCode for Code)
    pad: int = 0  # zero-pad digit-only strings to this width (0: no padding)


@dataclass(frozen=True)
class TableSchema:
    """A canonical table: ordered columns, the key that must be unique, the canonical row order."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    order: tuple[str, ...]
    describe: tuple[str, ...]  # columns that identify a row in error messages

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _floats(pairs: Iterable[tuple[str, str]], required: bool = True) -> tuple[Column, ...]:
    return tuple(Column(v1, v2, "float", required) for v1, v2 in pairs)


DAILY_QUOTES = TableSchema(
    name="daily_quotes",
    columns=(
        Column("Date", "Date", "date"),
        Column("Code", "Code", "code"),
        *_floats(
            [
                ("Open", "O"),
                ("High", "H"),
                ("Low", "L"),
                ("Close", "C"),
                ("Volume", "Vo"),
                ("TurnoverValue", "Va"),
                ("AdjustmentFactor", "AdjFactor"),
                ("AdjustmentOpen", "AdjO"),
                ("AdjustmentHigh", "AdjH"),
                ("AdjustmentLow", "AdjL"),
                ("AdjustmentClose", "AdjC"),
                ("AdjustmentVolume", "AdjVo"),
            ]
        ),
    ),
    key=("Date", "Code"),
    order=("Date", "Code"),
    describe=("Code", "Date"),
)

LISTED_INFO = TableSchema(
    name="listed_info",
    columns=(
        Column("Date", "Date", "date"),
        Column("Code", "Code", "code"),
        Column("CompanyName", "CoName", "str", required=False),
        Column("Sector17Code", "S17", "str"),
        Column("Sector17CodeName", "S17Nm", "str", required=False),
        Column("Sector33Code", "S33", "str", pad=4),
        Column("Sector33CodeName", "S33Nm", "str", required=False),
        Column("MarketCode", "Mkt", "str", pad=4),
        Column("MarketCodeName", "MktNm", "str", required=False),
    ),
    key=("Date", "Code"),
    order=("Date", "Code"),
    describe=("Code", "Date"),
)

TOPIX = TableSchema(
    name="topix",
    columns=(
        Column("Date", "Date", "date"),
        *_floats([("Open", "O"), ("High", "H"), ("Low", "L"), ("Close", "C")]),
    ),
    key=("Date",),
    order=("Date",),
    describe=("Date",),
)

INVESTOR_TYPES = {  # canonical investor type -> V2 abbreviation
    "Proprietary": "Prop",
    "Individuals": "Ind",
    "Foreigners": "Frgn",
    "InvestmentTrusts": "InvTr",
    "TrustBanks": "TrstBnk",
    "Total": "Tot",
}
FLOW_FIELDS = {"Sales": "Sell", "Purchases": "Buy", "Total": "Tot", "Balance": "Bal"}

TRADES_SPEC = TableSchema(
    name="trades_spec",
    columns=(
        Column("PublishedDate", "PubDate", "date"),
        Column("StartDate", "StDate", "date"),
        Column("EndDate", "EnDate", "date"),
        Column("Section", "Section", "str"),
        *_floats(
            (f"{investor}{field}", f"{short}{field_short}")
            for investor, short in INVESTOR_TYPES.items()
            for field, field_short in FLOW_FIELDS.items()
        ),
    ),
    key=("PublishedDate", "StartDate", "Section"),
    order=("PublishedDate", "Section"),
    describe=("Section", "PublishedDate"),
)

STATEMENTS = TableSchema(
    name="statements",
    columns=(
        Column("DisclosedDate", "DiscDate", "date"),
        Column("DisclosedTime", "DiscTime", "time", required=False),
        Column("Code", "Code", "code", v1_aliases=("LocalCode",)),
        Column("TypeOfCurrentPeriod", "CurPerType", "str"),
        *_floats(
            [
                ("NetSales", "Sales"),
                ("OperatingProfit", "OP"),
                ("OrdinaryProfit", "OdP"),
                ("Profit", "NP"),
                ("EarningsPerShare", "EPS"),
                ("TotalAssets", "TA"),
                ("Equity", "Eq"),
                ("ForecastNetSales", "FSales"),
                ("ForecastOperatingProfit", "FOP"),
                ("ForecastProfit", "FNP"),
            ],
            required=False,
        ),
    ),
    key=(),  # a company may disclose several documents a day; exact duplicates are dropped
    order=("DisclosedDate", "DisclosedTime", "Code"),
    describe=("Code", "DisclosedDate"),
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (DAILY_QUOTES, LISTED_INFO, TOPIX, TRADES_SPEC, STATEMENTS)
}
REQUIRED_TABLES = ("daily_quotes", "listed_info")
OPTIONAL_TABLES = ("topix", "trades_spec", "statements")


# ----------------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------------
def describe_row(table: str, row: Mapping[str, object]) -> str:
    """A row as a person names it, e.g. ``Code 72030 on 2021-03-04``."""
    schema = TABLES[table]
    parts = []
    for name in schema.describe:
        if name not in row:
            continue
        value = row[name]
        if name in ("Code", "Section"):
            parts.append(f"{name} {value}")
        elif name == "Date":
            parts.append(f"on {value}")
        elif name == "PublishedDate":
            parts.append(f"published {value}")
        elif name == "DisclosedDate":
            parts.append(f"disclosed {value}")
    return " ".join(parts) if parts else "row 0"


def _quote(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


# ----------------------------------------------------------------------------------------------
# Convention detection and renaming
# ----------------------------------------------------------------------------------------------
def _v1_names(col: Column) -> tuple[str, ...]:
    return (col.name, *col.v1_aliases)


def detect_convention(table: str, columns: Iterable[str]) -> Convention:
    """Which J-Quants convention the column names follow.

    The convention with more of its distinguishing names present wins (shared names such as
    ``Date`` and ``Code`` do not vote); it must then have every required column, otherwise a
    :class:`RawDataError` names the missing ones.
    """
    schema = TABLES[table]
    present = set(columns)
    v1 = {n for c in schema.columns for n in _v1_names(c)}
    v2 = {c.v2 for c in schema.columns}
    v1_votes = len(present & (v1 - v2))
    v2_votes = len(present & (v2 - v1))
    convention: Convention = "V2" if v2_votes > v1_votes else "V1"

    missing = [
        (c.v2 if convention == "V2" else c.name)
        for c in schema.columns
        if c.required
        and not present & ({c.v2, c.name} if convention == "V2" else set(_v1_names(c)))
    ]
    if missing:
        if v1_votes == v2_votes == 0:
            raise RawDataError(
                f"{table}: columns match neither J-Quants convention; missing "
                f"{_quote(c.name for c in schema.columns if c.required)} (V1) or "
                f"{_quote(c.v2 for c in schema.columns if c.required)} (V2); "
                f"got {_quote(sorted(present))}"
            )
        plural = "s" if len(missing) > 1 else ""
        raise RawDataError(
            f"{table}: missing column{plural} {_quote(missing)} "
            f"(J-Quants {convention} convention, detected from "
            f"{_quote(sorted(present & ((v2 - v1) if convention == 'V2' else (v1 - v2))), 3)})"
        )
    return convention


def canonical_names(table: str, columns: Iterable[str]) -> dict[str, str]:
    """Rename map {source column: canonical column} for a frame with these columns."""
    columns = list(columns)
    convention = detect_convention(table, columns)
    present = set(columns)
    mapping: dict[str, str] = {}
    for col in TABLES[table].columns:
        sources = (col.v2, col.name) if convention == "V2" else (*_v1_names(col),)
        source = next((s for s in sources if s in present), None)
        if source is not None:
            mapping[source] = col.name
    return mapping


def to_v2(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Rename a canonical frame to the V2 short names (what ClientV2 returns)."""
    return df.rename({c.name: c.v2 for c in TABLES[table].columns if c.name in df.columns})


# ----------------------------------------------------------------------------------------------
# Casting
# ----------------------------------------------------------------------------------------------
def _as_date(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return expr
    if isinstance(dtype, pl.Datetime):
        return expr.dt.date()
    text = expr.cast(pl.Utf8).str.strip_chars()
    return pl.coalesce(
        text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        text.str.strptime(pl.Date, "%Y%m%d", strict=False),
        text.str.slice(0, 10).str.strptime(pl.Date, "%Y/%m/%d", strict=False),
    )


def _as_float(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric() or dtype == pl.Null:
        return expr.cast(pl.Float64)
    text = expr.cast(pl.Utf8).str.strip_chars()
    return (
        pl.when(text.is_in(MISSING_TOKENS))
        .then(None)
        .otherwise(text)
        .cast(pl.Float64, strict=False)
    )


def _digits_padded(text: pl.Expr, width: int) -> pl.Expr:
    return pl.when(text.str.contains(r"^\d+$")).then(text.str.zfill(width)).otherwise(text)


def _as_str(expr: pl.Expr, dtype: pl.DataType, pad: int) -> pl.Expr:
    if dtype.is_float():
        expr = expr.cast(pl.Int64, strict=False)
    text = expr.cast(pl.Utf8).str.strip_chars()
    text = pl.when(text == "").then(None).otherwise(text)
    return _digits_padded(text, pad) if pad else text


def _as_code(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    text = _as_str(expr, dtype, pad=0)
    return pl.when(text.str.len_chars() == 4).then(text + "0").otherwise(text)


def _as_time(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Time:
        return expr.dt.strftime("%H:%M:%S")
    return _as_str(expr, dtype, pad=0)


def _cast_expr(col: Column, dtype: pl.DataType) -> pl.Expr:
    expr = pl.col(col.name)
    if col.kind == "date":
        return _as_date(expr, dtype)
    if col.kind == "float":
        return _as_float(expr, dtype)
    if col.kind == "code":
        return _as_code(expr, dtype)
    if col.kind == "time":
        return _as_time(expr, dtype)
    return _as_str(expr, dtype, col.pad)


_KIND_WORDS = {"date": "dates", "float": "numbers", "code": "codes", "str": "text", "time": "times"}


def _raise_uncastable(table: str, col: Column, raw: pl.DataFrame, bad: pl.Series) -> None:
    first = raw.filter(bad).row(0, named=True)
    raise RawDataError(
        f"{table}: column '{col.name}' has {int(bad.sum())} values that are not "
        f"{_KIND_WORDS[col.kind]} (first: {first[col.name]!r} at {describe_row(table, first)})"
    )


def to_canonical(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Map a raw J-Quants frame in either convention to the canonical columns and dtypes.

    Extra columns are dropped, absent optional columns are added as nulls, and every column is
    cast to its canonical dtype; a value that cannot be cast raises :class:`RawDataError`.
    """
    schema = TABLES[table]
    raw = df.rename(canonical_names(table, df.columns))
    raw = raw.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias(c.name)
        for c in schema.columns
        if c.name not in raw.columns
    ).select(schema.names)

    cast = raw.select(_cast_expr(c, raw.schema[c.name]).alias(c.name) for c in schema.columns)
    for col in schema.columns:
        was_value = raw[col.name].is_not_null()
        if raw.schema[col.name] == pl.Utf8 and col.kind == "float":
            was_value &= ~raw[col.name].str.strip_chars().is_in(MISSING_TOKENS)
        elif raw.schema[col.name] == pl.Utf8:
            was_value &= raw[col.name].str.strip_chars() != ""
        bad = was_value & cast[col.name].is_null()
        if bad.any():
            _raise_uncastable(table, col, raw, bad)
    return cast


_EMPTY_DTYPES = {
    "date": pl.Date,
    "float": pl.Float64,
    "code": pl.Utf8,
    "str": pl.Utf8,
    "time": pl.Utf8,
}


def empty_table(table: str) -> pl.DataFrame:
    """A zero-row canonical table: how an absent optional table is stored in the catalog."""
    return pl.DataFrame(schema={c.name: _EMPTY_DTYPES[c.kind] for c in TABLES[table].columns})
