"""A JSON document (splits, scaler statistics, metrics, evaluation), written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from atft_kedro.atomic import atomic_write_bytes


class JSONDocumentDataset(AbstractDataset[Any, Any]):
    """Load and save a JSON-serialisable object; NaN and infinities are refused, not written."""

    def __init__(self, filepath: str, metadata: dict | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._filepath.exists():
            raise DatasetError(
                f"{self._filepath} does not exist: run the pipeline that makes it first"
            )
        return json.loads(self._filepath.read_text())

    def save(self, data: Any) -> None:
        text = json.dumps(data, indent=2, allow_nan=False, default=str)
        atomic_write_bytes(self._filepath, text.encode())

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
