"""What a day-batch dataset reads, and what both implementations share.

``DaySource`` names the features table, the model input columns, the targets, the window and the
graph; ``DayBatches`` is the common part of ``StreamingDayDataset`` and ``InMemoryDayDataset``:
the source's ``FeatureTable``, the requested days (calendar indices) and their training order
(shuffled by ``default_rng([seed, epoch])``; ``set_epoch`` changes the epoch). Each dataset builds
what it serves from these in ``_prepare``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from atft_kedro.loader.day_table import FeatureTable
from atft_kedro.loader.scaler import OnlineRobustScaler


@dataclass(frozen=True)
class DaySource:
    """The day batches' data (docs/contracts.md, "Day batch").

    features_path: day-major features Parquet; columns: model input columns (F); horizons: target
    horizons h (``target_{h}d``); seq_len: window length L in trading days; scaler: fitted
    ``OnlineRobustScaler`` of the feature columns (masks pass through), or None;
    graph_edges_path: Date-sorted graph_edges Parquet, or None for no edges; require_target: keep
    only stocks with at least one finite target on day t; target, universe: which target view
    ``y`` holds and whether rows outside the investable universe lose their target
    (``FeatureTable``); block_days: streaming only, requested days per read block (unit of worker
    sharding and of shuffling); vocabularies: static vocabularies (default ``market.taxonomy``).
    """

    features_path: str | Path
    columns: Sequence[str]
    horizons: Sequence[int]
    seq_len: int
    scaler: OnlineRobustScaler | None = None
    graph_edges_path: str | Path | None = None
    require_target: bool = False
    target: str = "close"
    universe: str = "all"
    block_days: int = 32
    vocabularies: Mapping[str, Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if self.seq_len < 1 or self.block_days < 1:
            raise ValueError(
                f"day batches: seq_len={self.seq_len}, block_days={self.block_days} must be ≥ 1"
            )

    def table(self) -> FeatureTable:
        return FeatureTable(
            self.features_path,
            self.columns,
            self.horizons,
            self.scaler,
            self.vocabularies,
            target=self.target,
            universe=self.universe,
        )


class DayBatches:
    """One day batch per requested trading date of ``source`` (None = every date of the table;
    context days before them come from the table's calendar whether requested or not)."""

    def __init__(
        self,
        source: DaySource,
        dates: Sequence[dt.date | str] | None,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
    ) -> None:
        self.source, self.table = source, source.table()
        self.seq_len, self.horizons = int(source.seq_len), self.table.horizons
        self.require_target = bool(source.require_target)
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), int(epoch)
        self.days = self.table.calendar_index(dates)  # requested days, calendar indices
        self._prepare()

    def _prepare(self) -> None:
        """Build what the dataset serves from ``self.table`` and ``self.days``."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Select the training order of ``epoch`` (takes effect at the next pass)."""
        self.epoch = int(epoch)
