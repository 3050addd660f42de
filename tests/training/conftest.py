"""Fixtures of the training tests (builders in tests/training/tiny_market.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.tiny_market import write_market


@pytest.fixture
def tiny_market(tmp_path: Path) -> dict:
    return write_market(tmp_path)
