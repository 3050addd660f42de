"""Training checkpoints as a catalog entry: a directory of `fold{f}/phase{p}/{kind}.pt` files.

`CheckpointDirectoryDataset.load()` returns a `CheckpointStore` handle (nothing is read up front);
the training node saves through it as each epoch ends, and later pipelines load `best` from it.
Files are written atomically and read with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from atft_kedro.training.checkpoints import CheckpointStore


class CheckpointDirectoryDataset(AbstractDataset[CheckpointStore, CheckpointStore]):
    """Load a `CheckpointStore` on `path`; saving accepts only a store on the same path."""

    def __init__(self, path: str, metadata: dict | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> CheckpointStore:
        return CheckpointStore(self._path)

    def save(self, data: CheckpointStore) -> None:
        if Path(data.path).resolve() != self._path.resolve():
            raise DatasetError(
                f"checkpoints: a store on {data.path} cannot be saved to {self._path}; "
                "checkpoints are written through the store as training runs"
            )

    def _exists(self) -> bool:
        return self._path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


__all__ = ["CheckpointDirectoryDataset", "CheckpointStore"]
