"""day_graph: a day's edges as batch positions, and the Date-sorted reader of graph_edges."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import polars as pl
import pytest

from atft_kedro.loader.day_graph import (
    DayEdges,
    DayGraphReader,
    EdgeSpan,
    decode_edges,
    edges_to_positions,
)
from atft_kedro.loader.day_table import code_keys


def day_edges(pairs: list[tuple[str, str]]) -> DayEdges:
    """Edges with attr row i = [i, 10 i, 100 i], so a kept edge can be traced by its attributes."""
    i = np.arange(len(pairs), dtype=np.float32)
    return DayEdges(
        code_keys(np.array([s for s, _ in pairs])),
        code_keys(np.array([d for _, d in pairs])),
        np.stack([i, 10 * i, 100 * i], axis=1),
    )


def test_edges_map_to_the_positions_of_the_batch_codes():
    keys = code_keys(np.array(["13010", "13320", "72030"]))  # the batch, sorted: positions 0, 1, 2
    edges = day_edges([("72030", "13010"), ("13010", "13320"), ("13320", "72030")])
    index, attr = edges_to_positions(edges, keys)
    assert index.dtype == np.int64
    assert index.tolist() == [[2, 0, 1], [0, 1, 2]]
    np.testing.assert_array_equal(attr, edges.attr)


def test_edges_with_an_endpoint_missing_from_the_day_are_dropped():
    keys = code_keys(np.array(["13320", "72030"]))
    edges = day_edges(
        [
            ("13010", "13320"),  # source below every batch code (searchsorted → 0)
            ("13320", "72030"),  # kept: row 1
            ("72030", "99990"),  # destination above every batch code (searchsorted → len)
            ("14140", "72030"),  # source between two batch codes
            ("72030", "13320"),  # kept: row 4
        ]
    )
    index, attr = edges_to_positions(edges, keys)
    assert index.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_array_equal(attr[:, 0], [1.0, 4.0])  # the kept rows' attributes, in order


def test_no_edges_or_no_codes_give_empty_arrays_of_the_right_shape():
    keys = code_keys(np.array(["13010"]))
    for edges, batch in ((day_edges([]), keys), (day_edges([("13010", "13010")]), keys[:0])):
        index, attr = edges_to_positions(edges, batch)
        assert index.shape == (2, 0) and attr.shape == (0, 3)
    index, _ = edges_to_positions(day_edges([("13010", "72030")]), keys)
    assert index.shape == (2, 0)  # every edge dropped


DAYS = [dt.date(2024, 1, 4), dt.date(2024, 1, 5), dt.date(2024, 1, 9)]


def graph_table(days: list[dt.date]) -> pl.DataFrame:
    """Two edges per day, corr = day number within the list (0, 1, 2, ...)."""
    rows = [
        (d, s, t, float(i))
        for i, d in enumerate(days)
        for s, t in (("13010", "72030"), ("72030", "13010"))
    ]
    return pl.DataFrame(
        {
            "Date": [r[0] for r in rows],
            "src_code": [r[1] for r in rows],
            "dst_code": [r[2] for r in rows],
            "corr": [r[3] for r in rows],
            "same_market": [1] * len(rows),
            "same_sector33": [0] * len(rows),
        }
    )


def day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def test_decode_edges_gives_day_numbers_code_keys_and_attributes_in_order():
    days, edges = decode_edges(graph_table(DAYS[:2]).to_arrow())
    assert days.tolist() == [day_number(DAYS[0])] * 2 + [day_number(DAYS[1])] * 2
    np.testing.assert_array_equal(edges.src, code_keys(np.array(["13010", "72030"] * 2)))
    np.testing.assert_array_equal(edges.dst, code_keys(np.array(["72030", "13010"] * 2)))
    np.testing.assert_array_equal(edges.attr, [[0, 1, 0], [0, 1, 0], [1, 1, 0], [1, 1, 0]])


def test_reader_reads_only_the_row_groups_of_the_span(tmp_path, monkeypatch):
    path = tmp_path / "graph_edges.parquet"
    graph_table(DAYS).write_parquet(path, row_group_size=2)  # one row group per day
    reader = DayGraphReader(path, cache_groups=1)
    assert reader.group_lo.tolist() == [day_number(d) for d in DAYS]
    read = []
    real = reader._group
    monkeypatch.setattr(reader, "_group", lambda g: read.append(g) or real(g))

    span = reader.span(day_number(DAYS[1]), day_number(DAYS[2]))
    assert read == [1, 2]
    assert span.edges(day_number(DAYS[1])).attr[:, 0].tolist() == [1.0, 1.0]
    assert span.edges(day_number(DAYS[2])).attr[:, 0].tolist() == [2.0, 2.0]
    assert span.edges(day_number(DAYS[0])).src.size == 0  # outside the span: no edges
    between = day_number(DAYS[1]) + 1  # a weekend day inside the span: no edges
    assert span.edges(between).src.size == 0 and span.edges(between).attr.shape == (0, 3)
    assert list(reader._cache) == [2]  # cache_groups=1 keeps only the last group read
    assert reader.span(day_number(DAYS[2]) + 10, day_number(DAYS[2]) + 20).days.size == 0


def test_reader_trims_a_row_group_to_the_span(tmp_path):
    path = tmp_path / "graph_edges.parquet"
    graph_table(DAYS).write_parquet(path, row_group_size=6)  # all three days in one row group
    span = DayGraphReader(path).span(day_number(DAYS[1]), day_number(DAYS[1]))
    assert isinstance(span, EdgeSpan)
    assert span.days.tolist() == [day_number(DAYS[1])] * 2
    assert span.all_edges.attr[:, 0].tolist() == [1.0, 1.0]


def test_reader_survives_pickling_without_its_cache(tmp_path):
    path = tmp_path / "graph_edges.parquet"
    graph_table(DAYS).write_parquet(path, row_group_size=2)
    reader = DayGraphReader(path)
    reader.span(day_number(DAYS[0]), day_number(DAYS[2]))
    assert reader._cache
    copy = pickle.loads(pickle.dumps(reader))
    assert copy._parquet is None and not copy._cache
    assert copy.span(day_number(DAYS[0]), day_number(DAYS[0])).days.size == 2


def test_a_missing_column_or_an_unsorted_row_group_is_an_error(tmp_path):
    path = tmp_path / "no_corr.parquet"
    graph_table(DAYS).drop("corr").write_parquet(path)
    with pytest.raises(KeyError, match=r"missing column\(s\) \['corr'\]"):
        DayGraphReader(path)
    path = tmp_path / "unsorted.parquet"
    graph_table(DAYS[::-1]).write_parquet(path)
    with pytest.raises(ValueError, match="row group 0 is not sorted by Date"):
        DayGraphReader(path).span(day_number(DAYS[0]), day_number(DAYS[2]))
