"""The model-input table: features + peer features in the registry's order."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from atft_kedro.features import registry
from atft_kedro.features.model_input import KEYS, model_input_table, with_peer_features

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(3)]
CODES = ["13010", "13020", "130A0"]


def _features() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = len(DAYS) * len(CODES)
    return pl.DataFrame(
        {
            "Date": [d for d in DAYS for _ in CODES],
            "Code": CODES * len(DAYS),
            "market": "0111",
            "sector33": "0050",
            "sector17": "01",
            **{
                c: rng.normal(size=n).astype(np.float32) for c in registry.feature_names("features")
            },
            **{c: np.ones(n, dtype=np.int8) for c in registry.mask_names("features")},
            "target_1d": rng.normal(size=n).astype(np.float32),
        }
    )


def _peers(rows: pl.DataFrame) -> pl.DataFrame:
    names = registry.feature_names("graph")
    return rows.select("Date", "Code").with_columns(
        pl.lit(0.5, dtype=pl.Float32).alias(c) for c in names
    )


def test_columns_are_keys_model_inputs_targets_and_missing_peers_are_masked():
    features = _features()
    peers = _peers(features.filter(pl.col("Date") > DAYS[0]))  # no peer row on the first day
    peers = peers.with_columns(
        pl.when(pl.col("Code") == "13020")
        .then(float("nan"))
        .otherwise(pl.col("peer_gap_z"))
        .alias("peer_gap_z")
    )
    table = model_input_table(features.reverse(), peers)
    assert table.columns == [*KEYS, *registry.model_input_names(), "target_1d"]
    assert table.select("Date", "Code").equals(features.select("Date", "Code"))
    valid = dict(
        zip(zip(table["Date"], table["Code"], strict=True), table["is_peer_valid"], strict=True)
    )
    assert [valid[(DAYS[0], c)] for c in CODES] == [0, 0, 0]
    assert [valid[(DAYS[1], c)] for c in CODES] == [1, 0, 1]
    assert table.filter(pl.col("Date") == DAYS[0])["peer_ret_1d"].is_nan().all()
    for c in registry.feature_names("features"):
        assert table[c].equals(features[c]), c


def test_with_peer_features_swaps_the_peer_family_in_place():
    table = model_input_table(_features(), _peers(_features()))
    narrow = table.select("Date", "Code", "ret_1d", "peer_ret_1d", "is_peer_valid", "target_1d")
    swapped = with_peer_features(
        narrow, _peers(narrow).with_columns(pl.lit(-1.0, dtype=pl.Float32).alias("peer_ret_1d"))
    )
    assert swapped.columns[:6] == narrow.columns
    assert (swapped["peer_ret_1d"] == -1.0).all()
    assert swapped["ret_1d"].equals(narrow["ret_1d"])


def test_a_stale_features_table_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"features: missing column\(s\) \['ret_1d'\]"):
        model_input_table(_features().drop("ret_1d"), _peers(_features()))
    with pytest.raises(ValueError, match="peer_features: missing column"):
        model_input_table(_features(), _peers(_features()).drop("peer_count"))
