"""OnlineRobustScaler: exact on small data, uniform over the training period, train rows only."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atft_kedro.loader.scaler import MAD_TO_SIGMA, OnlineRobustScaler

COLUMNS = ["a", "b", "c"]


def dates(n: int) -> list[dt.date]:
    return [dt.date(2023, 1, 2) + dt.timedelta(days=i) for i in range(n)]


def day_major_table(n_days: int, per_day: int, seed: int) -> pa.Table:
    """a trends with the day (so a sample from early days only is visibly wrong), b has NaNs,
    c is constant except one row per day (MAD 0)."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(n_days), per_day)
    a = (day + rng.uniform(0, 1, day.size)).astype(np.float32)
    b = rng.standard_t(3, day.size).astype(np.float32)
    b[rng.random(day.size) < 0.2] = np.nan
    c = np.zeros(day.size, dtype=np.float32)
    c[::per_day] = rng.normal(size=n_days)
    return pa.table(
        {"Date": pa.array(np.array(dates(n_days))[day], pa.date32()), "a": a, "b": b, "c": c}
    )


def write(table: pa.Table, path, days_per_group: int = 3) -> None:
    day_index = np.unique(table.column("Date").to_numpy(), return_inverse=True)[1]
    with pq.ParquetWriter(path, table.schema) as writer:
        for first in range(0, int(day_index.max()) + 1, days_per_group):
            in_group = (day_index >= first) & (day_index < first + days_per_group)
            writer.write_table(table.filter(pa.array(in_group)))


def exact_stats(table: pa.Table, train: list[dt.date]) -> tuple[np.ndarray, np.ndarray, int]:
    rows = np.isin(table.column("Date").to_numpy(), np.array(train, dtype="datetime64[D]"))
    values = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in COLUMNS])[
        rows
    ]
    median = np.nanmedian(values.astype(np.float64), axis=0)
    mad = MAD_TO_SIGMA * np.nanmedian(np.abs(values - median), axis=0)
    return median, mad, int(rows.sum())


def test_exact_median_and_mad_counting_each_training_row_once(tmp_path):
    table = day_major_table(n_days=30, per_day=7, seed=0)
    write(table, tmp_path / "f.parquet")
    train = dates(30)[:18]
    scaler = OnlineRobustScaler(COLUMNS, reservoir_size=10_000).fit_from_parquet(
        tmp_path / "f.parquet", train
    )
    median, mad, n_rows = exact_stats(table, train)
    assert scaler.n_rows == n_rows == 18 * 7
    np.testing.assert_allclose(scaler.median_, median, rtol=1e-6)
    np.testing.assert_allclose(scaler.scale_[:2], mad[:2], rtol=1e-6)
    assert scaler.to_dict()["exact"]


def test_zero_mad_falls_back_to_standard_deviation():
    values = np.zeros((50, 3), dtype=np.float32)
    values[:, 0] = np.arange(50)
    values[0, 1] = 10.0  # MAD 0, std > 0
    scaler = OnlineRobustScaler(COLUMNS).partial_fit(values)
    assert scaler.scale_[1] == pytest.approx(np.std(values[:, 1]))
    assert scaler.scale_[2] == 1.0  # constant
    assert np.all(np.isfinite(scaler.transform(values)))


def test_validation_and_test_rows_do_not_change_the_statistics(tmp_path):
    table = day_major_table(n_days=40, per_day=25, seed=1)
    train = dates(40)[:20]
    perturbed = table.to_pydict()
    late = np.array(perturbed["Date"]) > train[-1]
    for c in COLUMNS:
        perturbed[c] = np.where(late, np.float32(1e6), np.array(perturbed[c], dtype=np.float32))
    write(table, tmp_path / "a.parquet")
    write(pa.table(perturbed, schema=table.schema), tmp_path / "b.parquet", days_per_group=4)
    fit = [
        OnlineRobustScaler(COLUMNS, reservoir_size=200, seed=5).fit_from_parquet(
            tmp_path / p, train
        )
        for p in ("a.parquet", "b.parquet")
    ]
    assert fit[0].to_dict() == fit[1].to_dict()
    assert not fit[0].to_dict()["exact"]


def test_sample_is_uniform_over_the_training_period(tmp_path):
    table = day_major_table(n_days=200, per_day=50, seed=2)
    write(table, tmp_path / "f.parquet", days_per_group=10)
    train = dates(200)
    scaler = OnlineRobustScaler(COLUMNS, reservoir_size=1_000, seed=0).fit_from_parquet(
        tmp_path / "f.parquet", train
    )
    median, mad, _ = exact_stats(table, train)
    # a = day + U(0,1): the true median is ~100 and 1.4826·MAD ~74; a sample of the first
    # 1,000 rows (20 days) would give a median of ~10.
    assert abs(scaler.median_[0] - median[0]) < 0.1 * mad[0]
    assert abs(scaler.scale_[0] / mad[0] - 1) < 0.1
    assert scaler.n_rows == 200 * 50


def test_same_seed_same_statistics_whatever_the_chunking():
    values = np.random.default_rng(0).normal(size=(5_000, 3)).astype(np.float32)
    one = OnlineRobustScaler(COLUMNS, reservoir_size=300, seed=7).partial_fit(values)
    chunked = OnlineRobustScaler(COLUMNS, reservoir_size=300, seed=7)
    for chunk in np.array_split(values, [10, 700, 701, 3000]):
        chunked.partial_fit(chunk)
    other_seed = OnlineRobustScaler(COLUMNS, reservoir_size=300, seed=8).partial_fit(values)
    np.testing.assert_array_equal(one.median_, chunked.median_)
    np.testing.assert_array_equal(one.scale_, chunked.scale_)
    assert not np.array_equal(one.median_, other_seed.median_)


def test_transform_clips_scales_and_zeroes_nan_and_round_trips_json():
    rng = np.random.default_rng(3)
    values = rng.normal(2.0, 3.0, size=(1_000, 3)).astype(np.float32)
    scaler = OnlineRobustScaler(COLUMNS, clip=2.5).partial_fit(values)
    probe = np.array([[np.nan, 1e9, -1e9], [2.0, 2.0, 2.0]], dtype=np.float32)
    z = scaler.transform(probe)
    assert z.dtype == np.float32
    assert z[0].tolist() == [0.0, 2.5, -2.5]
    np.testing.assert_allclose(z[1], (2.0 - scaler.median_) / scaler.scale_, rtol=1e-5)
    restored = OnlineRobustScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(values), scaler.transform(values))
    assert restored.to_dict() == scaler.to_dict()
    with pytest.raises(RuntimeError, match="from_dict"):
        restored.partial_fit(values)


def test_missing_column_and_no_training_rows_are_named(tmp_path):
    write(day_major_table(n_days=6, per_day=3, seed=0), tmp_path / "f.parquet")
    with pytest.raises(KeyError, match="'z'"):
        OnlineRobustScaler(["a", "z"]).fit_from_parquet(tmp_path / "f.parquet", dates(6))
    with pytest.raises(ValueError, match="no rows"):
        OnlineRobustScaler(COLUMNS).fit_from_parquet(tmp_path / "f.parquet", [dt.date(2030, 1, 1)])
