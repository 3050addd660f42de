"""Fixtures of the training tests (builders in tests/training/tiny_market.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atft_kedro.features.day_major import write_day_major_parquet as write_day_major
from tests.training.tiny_market import N_DAYS, full_graph, tiny_features, tiny_splits, trading_days


@pytest.fixture
def tiny_market(tmp_path: Path) -> dict:
    days = trading_days(N_DAYS)
    features = tmp_path / "features.parquet"
    write_day_major(tiny_features(), features, days_per_row_group=1, compression="zstd")
    edges = tmp_path / "graph_edges.parquet"
    full_graph(days).write_parquet(edges)
    return {"features": features, "graph_edges": edges, "splits": tiny_splits(days), "days": days}
