"""Fixtures for the feature tests."""

from __future__ import annotations

import polars as pl
import pytest

from tests.features.tables import make_panel, make_statements, make_topix, make_trades_spec


@pytest.fixture(scope="session")
def tables() -> dict[str, pl.DataFrame]:
    panel = make_panel()
    return {
        "panel": panel,
        "topix": make_topix(panel),
        "trades_spec": make_trades_spec(panel),
        "statements": make_statements(panel),
    }
