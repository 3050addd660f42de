import polars as pl
import pyarrow.parquet as pq
import pytest

from atft_kedro.features import check_day_major_parquet, write_day_major_parquet
from tests.features.tables import make_panel


def test_row_groups_hold_whole_days(tmp_path):
    df = make_panel(n_codes=5, n_days=23).sample(fraction=1.0, shuffle=True, seed=0)
    path = tmp_path / "features.parquet"
    write_day_major_parquet(df, path, days_per_row_group=4)
    assert check_day_major_parquet(path) == 6  # ceil(23 / 4)
    pf = pq.ParquetFile(path)
    assert [pf.metadata.row_group(i).num_rows for i in range(6)] == [20] * 5 + [15]
    back = pl.read_parquet(path)
    assert back.equals(df.sort("Date", "Code"))
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_checker_rejects_a_split_day(tmp_path):
    df = make_panel(n_codes=4, n_days=3).sort("Date", "Code")
    path = tmp_path / "bad.parquet"
    df.write_parquet(path, row_group_size=6)  # 4 rows per day: day 2 straddles groups
    with pytest.raises(ValueError, match="split across row groups"):
        check_day_major_parquet(path)
