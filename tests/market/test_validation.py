"""Boundary checks: each error case gives its one-line message; real-market quirks pass."""

from __future__ import annotations

import datetime as dt
import logging
import math

import polars as pl
import pytest

from atft_kedro.market.schema import TABLES
from atft_kedro.market.validation import (
    RawDataError,
    drop_unknown_codes,
    validate,
    validate_tables,
)

PRICES = ("Open", "High", "Low", "Close")


def quotes(rows: list[tuple[str, str, float | None]], **columns) -> pl.DataFrame:
    """Canonical quotes from (date, code, close) with O/H/L around the close; overrides by column."""
    frame = {name: [] for name in TABLES["daily_quotes"].names}
    for day, code, close in rows:
        o, h, lo = (None, None, None) if close is None else (close, close * 1.02, close * 0.98)
        values = dict(zip(PRICES, (o, h, lo, close), strict=True))
        volume = 0.0 if close is None else 1000.0
        for name in frame:
            if name in ("Date", "Code"):
                frame[name].append(day if name == "Date" else code)
            elif name in PRICES:
                frame[name].append(values[name])
            elif name.startswith("Adjustment") and name[10:] in PRICES:
                frame[name].append(values[name[10:]])
            elif name == "AdjustmentFactor":
                frame[name].append(1.0)
            elif name == "TurnoverValue":
                frame[name].append(0.0 if close is None else volume * close)
            else:
                frame[name].append(volume)
    frame.update(columns)
    return pl.DataFrame(frame, schema_overrides={"Date": pl.Utf8})


BASE = [
    ("2021-03-03", "72030", 100.0),
    ("2021-03-03", "86970", 50.0),
    ("2021-03-04", "72030", 101.0),
    ("2021-03-04", "86970", 51.0),
]


def listing(codes=("72030", "86970"), day="2021-03-01") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "Date": [day] * len(codes),
            "Code": list(codes),
            "Sector17Code": ["6"] * len(codes),
            "Sector33Code": ["3700"] * len(codes),
            "MarketCode": ["0111"] * len(codes),
        }
    )


def error(table: str, df: pl.DataFrame) -> str:
    with pytest.raises(RawDataError) as err:
        validate(table, df)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------- errors
def test_clean_input_passes_unchanged_in_canonical_form():
    out = validate("daily_quotes", quotes(BASE))
    assert out.columns == TABLES["daily_quotes"].names
    assert out.schema["Date"] == pl.Date
    assert out.height == len(BASE)


def test_empty_table():
    assert error("daily_quotes", quotes([])) == "daily_quotes: table is empty (0 rows)"


def test_missing_column():
    message = error("daily_quotes", quotes(BASE).drop("AdjustmentClose"))
    assert message.startswith("daily_quotes: missing column 'AdjustmentClose' (J-Quants V1")


def test_wrong_type():
    df = quotes(BASE).with_columns(pl.Series("Volume", ["1000", "1000", "lots", "1000"]))
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'Volume' has 1 values that are not numbers "
        "(first: 'lots' at Code 72030 on 2021-03-04)"
    )


def test_duplicate_date_code():
    df = quotes([*BASE, ("2021-03-04", "72030", 102.0)])
    assert error("daily_quotes", df) == (
        "daily_quotes: 1 duplicate (Date, Code) rows (first: Code 72030 on 2021-03-04)"
    )


def test_non_positive_adjusted_close():
    df = quotes(BASE, AdjustmentClose=[100.0, 0.0, -1.0, 51.0])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'AdjustmentClose' has 2 non-positive values "
        "(first: Code 86970 on 2021-03-03)"
    )


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_non_finite_price(bad):
    df = quotes(BASE, Close=[100.0, 50.0, 101.0, bad])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'Close' has 1 non-finite values (first: Code 86970 on 2021-03-04)"
    )


def test_negative_volume():
    df = quotes(BASE, Volume=[1000.0, -5.0, 1000.0, 1000.0])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'Volume' has 1 negative values (first: Code 86970 on 2021-03-03)"
    )


def test_non_positive_adjustment_factor():
    df = quotes(BASE, AdjustmentFactor=[1.0, 1.0, 0.0, 1.0])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'AdjustmentFactor' has 1 non-positive values "
        "(first: Code 72030 on 2021-03-04)"
    )


def test_missing_code():
    df = quotes(BASE, Code=["72030", None, "72030", "86970"])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'Code' has 1 missing values (first: Code None on 2021-03-03)"
    )


def test_code_of_wrong_length():
    df = quotes(BASE, Code=["72030", "869", "72030", "86970"])
    assert error("daily_quotes", df) == (
        "daily_quotes: column 'Code' has 1 values that are not 4- or 5-character codes "
        "(first: Code 869 on 2021-03-03)"
    )


def test_topix_errors_name_the_date():
    topix = pl.DataFrame(
        {
            "Date": ["2021-03-03", "2021-03-04"],
            "Open": [1.0, 1.0],
            "High": [1.0, 1.0],
            "Low": [1.0, -1.0],
            "Close": [1.0, 1.0],
        }
    )
    assert error("topix", topix) == (
        "topix: column 'Low' has 1 non-positive values (first: on 2021-03-04)"
    )


# --------------------------------------------------------------------- quirks and cleaning rules
def test_zero_volume_day_with_null_prices_passes():
    out = validate("daily_quotes", quotes([*BASE, ("2021-03-05", "86970", None)]))
    row = out.filter(pl.col("Date") == dt.date(2021, 3, 5)).row(0, named=True)
    assert row["Volume"] == 0.0
    assert row["Close"] is None and row["AdjustmentClose"] is None


def test_unadjusted_split_jump_and_single_day_history_pass():
    rows = [*BASE, ("2021-03-05", "72030", 50.5), ("2021-03-05", "130A0", 900.0)]
    factor = [1.0, 1.0, 1.0, 1.0, 0.5, 1.0]  # 72030 splits 1:2 on 2021-03-05
    out = validate("daily_quotes", quotes(rows, AdjustmentFactor=factor))
    assert out.height == len(rows)
    assert out.filter(pl.col("Code") == "130A0").height == 1


def test_broken_ohlc_ordering_is_clipped_and_logged(caplog):
    df = quotes(BASE).with_columns(
        pl.Series("High", [99.0, 51.0, 103.0, 52.0]),  # row 0: High below Close
        pl.Series("AdjustmentLow", [98.0, 52.0, 99.0, 50.0]),  # row 1: Low above Close
    )
    with caplog.at_level(logging.WARNING):
        out = validate("daily_quotes", df)
    first = out.row(0, named=True)
    assert first["High"] == max(first["Open"], first["Close"], first["Low"]) == 100.0
    second = out.row(1, named=True)
    assert second["AdjustmentLow"] == min(second["AdjustmentOpen"], second["AdjustmentClose"])
    assert (out["High"] >= out["Close"]).all() and (
        out["AdjustmentLow"] <= out["AdjustmentClose"]
    ).all()
    assert "daily_quotes: 1 rows break OHLC ordering in High/Low" in caplog.text
    assert "daily_quotes: 1 rows break OHLC ordering in AdjustmentHigh/AdjustmentLow" in caplog.text


def test_unsorted_input_is_sorted_and_logged(caplog):
    with caplog.at_level(logging.INFO):
        out = validate("daily_quotes", quotes(BASE[::-1]))
    assert (
        out.select("Date", "Code").rows()
        == quotes(BASE).select(pl.col("Date").str.to_date(), "Code").rows()
    )
    assert "daily_quotes: input not sorted by (Date, Code); sorted it" in caplog.text


def test_sorted_input_logs_nothing(caplog):
    with caplog.at_level(logging.INFO):
        validate("daily_quotes", quotes(BASE))
    assert "sorted it" not in caplog.text


def test_null_adjustment_factor_means_no_action():
    out = validate("daily_quotes", quotes(BASE, AdjustmentFactor=[1.0, None, 1.0, 1.0]))
    assert out["AdjustmentFactor"].to_list() == [1.0] * 4


def test_unknown_codes_are_dropped_and_counted(caplog):
    dq = validate("daily_quotes", quotes([*BASE, ("2021-03-04", "99990", 10.0)]))
    li = validate("listed_info", listing())
    with caplog.at_level(logging.WARNING):
        kept = drop_unknown_codes(dq, li)
    assert set(kept["Code"]) == {"72030", "86970"}
    assert kept.height == len(BASE)
    assert "dropped 1 rows of 1 codes absent from listed_info (e.g. 99990)" in caplog.text


def test_no_known_code_at_all_is_an_error():
    dq = validate("daily_quotes", quotes(BASE))
    li = validate("listed_info", listing(codes=("11110",)))
    with pytest.raises(RawDataError, match=r"^daily_quotes: no code appears in listed_info"):
        drop_unknown_codes(dq, li)


def test_validate_tables_applies_the_cross_table_rule():
    out = validate_tables(
        {
            "daily_quotes": quotes([*BASE, ("2021-03-04", "99990", 10.0)]),
            "listed_info": listing(),
        }
    )
    assert "99990" not in set(out["daily_quotes"]["Code"])


def test_exact_duplicate_statements_are_dropped():
    row = {
        "DisclosedDate": "2021-03-04",
        "DisclosedTime": "15:00:00",
        "Code": "72030",
        "TypeOfCurrentPeriod": "FY",
        "NetSales": "100",
    }
    out = validate("statements", pl.DataFrame([row, row]))
    assert out.height == 1


def test_codes_unsorted_within_a_date_are_sorted():
    rows = [BASE[1], BASE[0], BASE[2], BASE[3]]  # dates ascending, codes not
    out = validate("daily_quotes", quotes(rows))
    assert out["Code"].to_list() == ["72030", "86970", "72030", "86970"]
