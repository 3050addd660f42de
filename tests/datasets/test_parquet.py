import datetime as dt

import polars as pl
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError

from atft_kedro.datasets import DayMajorParquetDataset, JSONDocumentDataset, PolarsParquetDataset


def _table() -> pl.DataFrame:
    dates = [dt.date(2024, 1, d) for d in (4, 4, 5, 9, 9, 9, 10)]
    return pl.DataFrame({"Date": dates, "Code": ["A", "B", "A", "A", "B", "C", "A"], "v": range(7)})


@pytest.mark.parametrize("days_per_group, sizes", [(1, [2, 1, 3, 1]), (2, [3, 4]), (10, [7])])
def test_day_major_row_groups_hold_whole_days(tmp_path, days_per_group, sizes):
    ds = DayMajorParquetDataset(str(tmp_path / "f.parquet"), days_per_row_group=days_per_group)
    ds.save(_table().sample(fraction=1.0, shuffle=True, seed=3))
    meta = pq.ParquetFile(tmp_path / "f.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == sizes
    handle = ds.load()
    assert handle.read().equals(_table())  # sorted by (Date, Code) on the way out


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "t.parquet"
    ds = PolarsParquetDataset(str(path))
    ds.save(_table())
    with pytest.raises(DatasetError):
        ds.save("not a frame")  # fails inside the write
    assert pl.read_parquet(path).equals(_table())  # the earlier complete file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no temp files left behind


def test_json_document_refuses_nan(tmp_path):
    ds = JSONDocumentDataset(str(tmp_path / "m.json"))
    ds.save({"a": 1.5})
    assert ds.load() == {"a": 1.5}
    with pytest.raises(DatasetError, match="JSON compliant"):
        ds.save({"a": float("nan")})
    assert ds.load() == {"a": 1.5}


def test_text_document_round_trip_and_atomic(tmp_path):
    from atft_kedro.datasets import TextDocumentDataset

    ds = TextDocumentDataset(str(tmp_path / "r.html"))
    ds.save("<p>日本</p>")
    assert ds.load() == "<p>日本</p>"
    with pytest.raises(DatasetError):
        ds.save(None)
    assert ds.load() == "<p>日本</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
