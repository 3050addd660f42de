"""A text document (the HTML report), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from atft_kedro.atomic import atomic_write_bytes


class TextDocumentDataset(AbstractDataset[str, str]):
    """Load and save a UTF-8 text file; a failed save leaves the previous file untouched."""

    def __init__(self, filepath: str, metadata: dict | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> str:
        if not self._filepath.exists():
            raise DatasetError(
                f"{self._filepath} does not exist: run the pipeline that makes it first"
            )
        return self._filepath.read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        atomic_write_bytes(self._filepath, data.encode("utf-8"))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
