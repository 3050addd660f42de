"""Boundary checks for the raw J-Quants tables.

:func:`validate` maps a raw frame to the canonical schema (``market.schema``) and then either
raises :class:`RawDataError` with one line naming the table, the column, how many values are bad
and the first offending row, or applies a documented cleaning rule and logs how many rows it
touched.

Errors (the data cannot be trusted):
    missing columns, values that cannot be cast, an empty table, missing dates or codes, codes that
    are not 5 characters, duplicate keys (``(Date, Code)`` for quotes), non-finite or non-positive
    prices, non-finite or non-positive AdjustmentFactor, negative or non-finite volume/turnover.

Cleaning rules (real markets do this; logged, never fatal):
    - unsorted input is sorted into canonical order (``Date, Code`` for quotes);
    - an OHLC row whose ordering is broken (High below Open/Close/Low, or Low above them) is
      clipped: High := max(O, H, L, C), Low := min(O, H, L, C), for raw and adjusted prices;
    - a null AdjustmentFactor means no corporate action that day and becomes 1.0;
    - exact duplicate statements rows are dropped;
    - quotes for codes never present in listed_info are dropped (:func:`drop_unknown_codes`).

Valid quirks that pass unchanged: zero-volume days with null OHLC, unadjusted price jumps on a
corporate action (AdjustmentFactor ≠ 1), codes with a history of a single day.
"""

from __future__ import annotations

import logging

import polars as pl

from atft_kedro.market.schema import TABLES, RawDataError, describe_row, to_canonical

__all__ = ["RawDataError", "drop_unknown_codes", "validate", "validate_tables"]

logger = logging.getLogger(__name__)

PRICE_COLUMNS = {
    "daily_quotes": (
        "Open",
        "High",
        "Low",
        "Close",
        "AdjustmentOpen",
        "AdjustmentHigh",
        "AdjustmentLow",
        "AdjustmentClose",
    ),
    "topix": ("Open", "High", "Low", "Close"),
}
QUANTITY_COLUMNS = {"daily_quotes": ("Volume", "TurnoverValue", "AdjustmentVolume")}
OHLC_SETS = {
    "daily_quotes": (
        ("Open", "High", "Low", "Close"),
        ("AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow", "AdjustmentClose"),
    ),
    "topix": (("Open", "High", "Low", "Close"),),
}


Check = tuple[pl.Expr, str]  # (row is bad, message with {n} for the count)


def _raise_first(table: str, df: pl.DataFrame, checks: list[Check]) -> None:
    """Count every check's bad rows in one pass; raise for the first check that has any."""
    if not checks:
        return
    counts = df.select(bad.sum().alias(str(i)) for i, (bad, _) in enumerate(checks)).row(0)
    for (bad, what), n in zip(checks, counts, strict=True):
        if n:
            first = describe_row(table, df.filter(bad).row(0, named=True))
            raise RawDataError(f"{table}: {what.format(n=n)} (first: {first})")


def _key_checks(table: str, df: pl.DataFrame) -> list[Check]:
    schema = TABLES[table]
    checks = [
        (pl.col(name).is_null(), f"column '{name}' has {{n}} missing values")
        for name in schema.key or schema.describe
    ]
    if "Code" in df.columns:
        checks.append(
            (
                pl.col("Code").str.len_chars() != 5,
                "column 'Code' has {n} values that are not 4- or 5-character codes",
            )
        )
    if schema.key:
        keys = ", ".join(schema.key)
        # is_first_distinct marks every repeat after the first: n counts the extra rows
        checks.append(
            (~pl.struct(schema.key).is_first_distinct(), f"{{n}} duplicate ({keys}) rows")
        )
    return checks


def _value_checks(table: str) -> list[Check]:
    def non_finite(name: str) -> Check:
        col = pl.col(name)
        return col.is_nan() | col.is_infinite(), f"column '{name}' has {{n}} non-finite values"

    checks = []
    for name in PRICE_COLUMNS.get(table, ()):
        checks += [
            non_finite(name),
            (pl.col(name) <= 0, f"column '{name}' has {{n}} non-positive values"),
        ]
    for name in QUANTITY_COLUMNS.get(table, ()):
        checks += [
            non_finite(name),
            (pl.col(name) < 0, f"column '{name}' has {{n}} negative values"),
        ]
    if table == "daily_quotes":
        name = "AdjustmentFactor"
        checks += [
            non_finite(name),
            (pl.col(name) <= 0, f"column '{name}' has {{n}} non-positive values"),
        ]
    return checks


def _clip_ohlc(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """High := max(O, H, L, C) and Low := min(O, H, L, C) where a row breaks the ordering."""
    for o, h, low, c in OHLC_SETS.get(table, ()):
        hi = pl.max_horizontal(o, h, low, c)
        lo = pl.min_horizontal(o, h, low, c)
        broken = (pl.col(h) < hi) | (pl.col(low) > lo)
        n = df.select(broken.sum()).item()
        if n:
            logger.warning(
                "%s: %d rows break OHLC ordering in %s/%s; clipped High/Low to the row's max/min",
                table,
                n,
                h,
                low,
            )
            df = df.with_columns(
                pl.when(broken).then(hi).otherwise(pl.col(h)).alias(h),
                pl.when(broken).then(lo).otherwise(pl.col(low)).alias(low),
            )
    return df


def _is_sorted(order: list[str]) -> pl.Expr:
    """True where a row is not before the previous one in lexicographic ``order`` (no nulls)."""
    expr = pl.col(order[-1]) >= pl.col(order[-1]).shift(1)
    for name in reversed(order[:-1]):
        prev = pl.col(name).shift(1)
        expr = (pl.col(name) > prev) | ((pl.col(name) == prev) & expr)
    return expr.fill_null(True)


def _sorted(table: str, df: pl.DataFrame) -> pl.DataFrame:
    order = list(TABLES[table].order)
    has_nulls = any(df[name].null_count() for name in order)
    if not has_nulls and df.select(_is_sorted(order).all()).item():
        return df
    ranked = df.with_row_index("_row").sort(order, nulls_last=True, maintain_order=True)
    if not ranked.select(pl.col("_row").diff().fill_null(1).gt(0).all()).item():
        logger.info("%s: input not sorted by (%s); sorted it", table, ", ".join(order))
    return ranked.drop("_row")


def validate(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Check one raw table (either convention) and return it canonical, clean and sorted."""
    if table not in TABLES:
        raise KeyError(f"unknown J-Quants table {table!r}; expected one of {sorted(TABLES)}")
    if df.height == 0:
        raise RawDataError(f"{table}: table is empty (0 rows)")
    df = to_canonical(table, df)
    _raise_first(table, df, _key_checks(table, df))
    _raise_first(table, df, _value_checks(table))

    if table == "daily_quotes":
        n_null = df["AdjustmentFactor"].null_count()
        if n_null:
            logger.info("daily_quotes: %d null AdjustmentFactor values set to 1.0", n_null)
            df = df.with_columns(pl.col("AdjustmentFactor").fill_null(1.0))
    if table == "statements":
        n_before = df.height
        df = df.unique(maintain_order=True)
        if df.height < n_before:
            logger.info("statements: dropped %d exact duplicate rows", n_before - df.height)

    df = _clip_ohlc(table, df)
    return _sorted(table, df)


def drop_unknown_codes(daily_quotes: pl.DataFrame, listed_info: pl.DataFrame) -> pl.DataFrame:
    """Drop quotes of codes that never appear in listed_info (no market/sector is knowable)."""
    known = listed_info.select("Code").unique()
    kept = daily_quotes.join(known, on="Code", how="semi", maintain_order="left")
    n_dropped = daily_quotes.height - kept.height
    if n_dropped:
        codes = daily_quotes.join(known, on="Code", how="anti")["Code"].unique()
        logger.warning(
            "daily_quotes: dropped %d rows of %d codes absent from listed_info (e.g. %s)",
            n_dropped,
            codes.len(),
            codes.sort()[0],
        )
    if kept.height == 0:
        raise RawDataError(
            "daily_quotes: no code appears in listed_info "
            f"(first: Code {daily_quotes['Code'][0]} on {daily_quotes['Date'][0]})"
        )
    return kept


def validate_tables(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Validate every table present and drop quotes of codes unknown to listed_info."""
    clean = {name: validate(name, df) for name, df in tables.items() if df is not None}
    if "daily_quotes" in clean and "listed_info" in clean:
        clean["daily_quotes"] = drop_unknown_codes(clean["daily_quotes"], clean["listed_info"])
    return clean
