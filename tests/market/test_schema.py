"""Canonical schema: convention detection, renaming, code normalisation and safe casting."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from atft_kedro.market.schema import (
    TABLES,
    RawDataError,
    detect_convention,
    to_canonical,
    to_v2,
)


def quotes_v1(**overrides) -> pl.DataFrame:
    row = {
        "Date": "2024-01-04",
        "Code": "72030",
        "Open": 100.0,
        "High": 110.0,
        "Low": 95.0,
        "Close": 105.0,
        "Volume": 1000.0,
        "TurnoverValue": 105000.0,
        "AdjustmentFactor": 1.0,
        "AdjustmentOpen": 100.0,
        "AdjustmentHigh": 110.0,
        "AdjustmentLow": 95.0,
        "AdjustmentClose": 105.0,
        "AdjustmentVolume": 1000.0,
    }
    columns = {k: [v] for k, v in row.items()}
    columns.update(overrides)
    return pl.DataFrame(columns)


def test_every_table_maps_v2_names_one_to_one():
    for schema in TABLES.values():
        v2 = [c.v2 for c in schema.columns]
        assert len(set(v2)) == len(v2), schema.name


def test_detects_v1_and_v2():
    v1 = quotes_v1()
    assert detect_convention("daily_quotes", v1.columns) == "V1"
    assert detect_convention("daily_quotes", to_v2("daily_quotes", v1).columns) == "V2"


def test_v2_short_names_map_to_canonical_long_names():
    v2 = to_v2("daily_quotes", quotes_v1())
    assert {"O", "AdjC", "AdjFactor", "Va"} <= set(v2.columns)
    assert to_canonical("daily_quotes", v2).columns == TABLES["daily_quotes"].names
    assert to_canonical("daily_quotes", v2).equals(to_canonical("daily_quotes", quotes_v1()))


def test_extra_v2_columns_are_dropped():
    v2 = to_v2("daily_quotes", quotes_v1()).with_columns(pl.lit(1.0).alias("UL"))
    assert "UL" not in to_canonical("daily_quotes", v2).columns


def test_missing_v2_column_is_named_on_one_line():
    v2 = to_v2("daily_quotes", quotes_v1()).drop("AdjC")
    with pytest.raises(RawDataError) as err:
        to_canonical("daily_quotes", v2)
    message = str(err.value)
    assert message.startswith("daily_quotes: missing column 'AdjC' (J-Quants V2 convention")
    assert "\n" not in message


def test_missing_v1_columns_are_all_named():
    with pytest.raises(RawDataError, match=r"missing columns 'Open', 'Close' \(J-Quants V1"):
        to_canonical("daily_quotes", quotes_v1().drop("Open", "Close"))


def test_table_matching_neither_convention_lists_what_is_needed():
    with pytest.raises(RawDataError, match=r"^topix: columns match neither J-Quants convention"):
        to_canonical("topix", pl.DataFrame({"Date": ["2024-01-04"], "Price": [1.0]}))


def test_codes_become_five_character_strings():
    df = quotes_v1(Code=["1301"])
    assert to_canonical("daily_quotes", df)["Code"].to_list() == ["13010"]
    alnum = quotes_v1(Code=["130A0"])
    assert to_canonical("daily_quotes", alnum)["Code"].to_list() == ["130A0"]
    integers = pl.concat([quotes_v1()] * 2).with_columns(pl.Series("Code", [7203, 72030]))
    assert to_canonical("daily_quotes", integers)["Code"].to_list() == ["72030", "72030"]
    floats = quotes_v1(Code=[1301.0])  # pandas turns an integer column with gaps into floats
    assert to_canonical("daily_quotes", floats)["Code"].to_list() == ["13010"]


def test_dates_from_iso_compact_integer_and_datetime():
    for value in ["2024-01-04", "20240104", 20240104, dt.datetime(2024, 1, 4, 0, 0)]:
        out = to_canonical("daily_quotes", quotes_v1(Date=[value]))
        assert out["Date"].to_list() == [dt.date(2024, 1, 4)], value


def test_uncastable_date_names_column_count_and_row():
    with pytest.raises(RawDataError) as err:
        to_canonical("daily_quotes", quotes_v1(Date=["04/01/2024x"]))
    assert str(err.value) == (
        "daily_quotes: column 'Date' has 1 values that are not dates "
        "(first: '04/01/2024x' at Code 72030 on 04/01/2024x)"
    )


def test_uncastable_number_names_column_count_and_row():
    df = pl.concat([quotes_v1(), quotes_v1(Date=["2024-01-05"])]).with_columns(
        pl.Series("Close", ["105", "n/a"])
    )
    with pytest.raises(RawDataError) as err:
        to_canonical("daily_quotes", df)
    assert str(err.value) == (
        "daily_quotes: column 'Close' has 1 values that are not numbers "
        "(first: 'n/a' at Code 72030 on 2024-01-05)"
    )


def test_v1_statements_numbers_as_strings_with_blank_for_missing():
    raw = pl.DataFrame(
        {
            "DisclosedDate": ["2024-01-09"],
            "DisclosedTime": ["15:00:00"],
            "LocalCode": ["8697"],
            "TypeOfCurrentPeriod": ["3Q"],
            "NetSales": ["115000000000"],
            "OrdinaryProfit": [""],
            "EarningsPerShare": [" 79.9 "],
            "Profit": ["-"],
        }
    )
    out = to_canonical("statements", raw)
    assert out.columns == TABLES["statements"].names
    assert out["Code"].to_list() == ["86970"]  # LocalCode alias, 4 → 5 characters
    assert out["NetSales"].dtype == pl.Float64
    assert out["NetSales"].to_list() == [115e9]
    assert out["EarningsPerShare"].to_list() == [79.9]
    assert out["OrdinaryProfit"].to_list() == [None]
    assert out["Profit"].to_list() == [None]
    assert out["ForecastProfit"].to_list() == [None]  # absent optional column → null


def test_statements_uncastable_string_number_is_an_error():
    raw = pl.DataFrame(
        {
            "DiscDate": ["2024-01-09"],
            "Code": ["86970"],
            "CurPerType": ["3Q"],
            "Sales": ["1,000"],
        }
    )
    with pytest.raises(
        RawDataError,
        match=r"statements: column 'NetSales' has 1 values that are not numbers \(first: '1,000' at Code 86970 disclosed 2024-01-09\)",
    ):
        to_canonical("statements", raw)


def test_category_codes_parsed_as_integers_are_zero_padded():
    raw = pl.DataFrame(
        {
            "Date": ["2024-01-04"],
            "Code": [72030],
            "Sector17Code": [6],
            "Sector33Code": [50],
            "MarketCode": [111],
        }
    )
    out = to_canonical("listed_info", raw)
    assert out.row(0, named=True) | {"Date": None} == {
        "Date": None,
        "Code": "72030",
        "CompanyName": None,
        "Sector17Code": "6",
        "Sector17CodeName": None,
        "Sector33Code": "0050",
        "Sector33CodeName": None,
        "MarketCode": "0111",
        "MarketCodeName": None,
    }
    assert out.schema["Sector33Code"] == pl.Utf8


def test_canonical_input_is_left_unchanged():
    once = to_canonical("daily_quotes", quotes_v1())
    assert to_canonical("daily_quotes", once).equals(once)
