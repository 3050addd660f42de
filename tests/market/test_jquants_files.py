"""Reading J-Quants folders: either convention, CSV or Parquet, one file or many per table."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import polars as pl
import pytest

from atft_kedro.market.jquants_files import read_jquants_dir
from atft_kedro.market.panel import build_panel
from atft_kedro.market.schema import TABLES, RawDataError, to_v2

V1 = Path(__file__).parents[1] / "fixtures" / "jquants" / "v1"


@pytest.fixture(scope="module")
def canonical() -> dict[str, pl.DataFrame]:
    return read_jquants_dir(V1)


def write(folder: Path, tables: dict[str, pl.DataFrame], fmt: str, v2: bool) -> Path:
    """Write raw tables as J-Quants would deliver them (dates as text in CSV)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        out = to_v2(name, df) if v2 else df
        if fmt == "parquet":
            out.write_parquet(folder / f"{name}.parquet")
        else:
            out.write_csv(folder / f"{name}.csv")
    return folder


def test_v1_csv_fixture_reads_every_table(canonical):
    assert set(canonical) == set(TABLES)
    for name, df in canonical.items():
        assert df.columns == TABLES[name].names, name
    assert canonical["statements"]["NetSales"].dtype == pl.Float64


@pytest.mark.parametrize(("fmt", "v2"), [("csv", True), ("parquet", True), ("parquet", False)])
def test_conventions_and_formats_give_identical_tables_and_panels(tmp_path, canonical, fmt, v2):
    folder = write(tmp_path / "raw", canonical, fmt, v2)
    other = read_jquants_dir(folder)
    for name in TABLES:
        assert other[name].equals(canonical[name]), name
    assert build_panel(other["daily_quotes"], other["listed_info"]).equals(
        build_panel(canonical["daily_quotes"], canonical["listed_info"])
    )


def test_gzipped_csv_and_a_folder_of_files_per_table(tmp_path, canonical):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("listed_info", "topix"):
        shutil.copy(V1 / f"{name}.csv", folder / f"{name}.csv")
    with (
        open(V1 / "statements.csv", "rb") as src,
        gzip.open(folder / "statements.csv.gz", "wb") as dst,
    ):
        dst.write(src.read())
    # daily quotes as one file per date, half V1 CSV and half V2 Parquet
    (folder / "daily_quotes").mkdir()
    for i, (day, part) in enumerate(
        canonical["daily_quotes"].group_by("Date", maintain_order=True)
    ):
        if i % 2:
            to_v2("daily_quotes", part).write_parquet(folder / "daily_quotes" / f"{day[0]}.parquet")
        else:
            part.write_csv(folder / "daily_quotes" / f"{day[0]}.csv")
    out = read_jquants_dir(folder)
    assert out["daily_quotes"].equals(canonical["daily_quotes"])
    assert out["statements"].equals(canonical["statements"])
    assert "trades_spec" not in out


def test_missing_required_table_names_folder_and_expected_files(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    shutil.copy(V1 / "daily_quotes.csv", folder)
    with pytest.raises(RawDataError) as err:
        read_jquants_dir(folder)
    assert str(err.value) == (
        f"listed_info: required table not found in {folder} (expected one of listed_info.parquet, "
        "listed_info.csv, listed_info.csv.gz or a folder listed_info/ of such files)"
    )


def test_missing_optional_tables_are_absent_and_logged(tmp_path, caplog):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("daily_quotes", "listed_info"):
        shutil.copy(V1 / f"{name}.csv", folder)
    with caplog.at_level(logging.WARNING):
        out = read_jquants_dir(folder)
    assert set(out) == {"daily_quotes", "listed_info"}
    for name in ("topix", "trades_spec", "statements"):
        assert (
            f"{name}: not found in {folder}; its features will be NaN with validity mask 0"
            in caplog.text
        )


def test_two_sources_for_one_table_is_an_error(tmp_path, canonical):
    folder = write(tmp_path / "raw", canonical, "csv", v2=False)
    canonical["topix"].write_parquet(folder / "topix.parquet")
    with pytest.raises(
        RawDataError, match=r"^topix: several sources in .*topix\.parquet, topix\.csv"
    ):
        read_jquants_dir(folder)


def test_error_in_a_file_names_the_file(tmp_path, canonical):
    folder = write(tmp_path / "raw", canonical, "csv", v2=True)
    pl.read_csv(folder / "topix.csv").drop("C").write_csv(folder / "topix.csv")
    with pytest.raises(RawDataError, match=r"^topix: missing column 'C' .*\[file .*topix\.csv\]$"):
        read_jquants_dir(folder)


def test_alphanumeric_and_integer_codes_flow_through(tmp_path, canonical):
    # a Parquet export where numeric codes were stored as 4-digit integers
    dq = canonical["daily_quotes"].filter(pl.col("Code") != "130A0")
    integer_codes = dq.with_columns((pl.col("Code").str.slice(0, 4).cast(pl.Int64)).alias("Code"))
    folder = write(
        tmp_path / "raw", {**canonical, "daily_quotes": integer_codes}, "parquet", v2=True
    )
    out = read_jquants_dir(folder)
    assert out["daily_quotes"].equals(dq)
    panel = build_panel(canonical["daily_quotes"], canonical["listed_info"])
    alnum = panel.filter(pl.col("Code") == "130A0")
    assert alnum.height == 5 and set(alnum["market"]) == {"0113"}


def test_quirky_fixture_rows_survive(canonical):
    dq = canonical["daily_quotes"]
    no_trade = dq.filter((pl.col("Code") == "86970") & pl.col("Close").is_null())
    assert no_trade.height == 1 and no_trade["Volume"].item() == 0.0
    split = dq.filter(pl.col("AdjustmentFactor") != 1.0)
    assert split.select("Code").item() == "72030"
