"""`kedro run --pipeline data_processing` on the tiny synthetic market, through the real CLI."""

import json

import polars as pl
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def test_data_processing_end_to_end(kedro_project):
    result = kedro_project.run("--pipeline", "data_processing")
    assert result.returncode == 0, result.stderr[-3000:]

    data = kedro_project.path / "data"
    panel = pl.read_parquet(data / "03_primary" / "panel.parquet")
    features_file = data / "04_feature" / "features.parquet"
    features = pl.read_parquet(features_file)
    assert features.height == panel.height  # one feature row per traded (Date, Code)
    assert features.select("Date", "Code").equals(panel.select("Date", "Code"))

    # Row groups hold whole days: no date appears in two row groups.
    meta = pq.ParquetFile(features_file)
    days_per_group = [
        meta.read_row_group(i, columns=["Date"]).column("Date").unique().to_pylist()
        for i in range(meta.num_row_groups)
    ]
    flat = [d for days in days_per_group for d in days]
    assert len(flat) == len(set(flat)) == features.get_column("Date").n_unique()

    splits = json.loads((data / "04_feature" / "splits.json").read_text())
    assert splits["purge_days"] == 20 + 20 - 1 and splits["embargo_days"] == 5
    assert "oracle_alpha" not in " ".join(features.columns)
