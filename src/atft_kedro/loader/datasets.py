"""Choosing a day-batch dataset and wrapping it in a DataLoader (``loader.implementation``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch.utils.data import DataLoader

from atft_kedro.loader.day_source import DaySource
from atft_kedro.loader.in_memory import InMemoryDayDataset
from atft_kedro.loader.streaming import StreamingDayDataset

DayDataset = StreamingDayDataset | InMemoryDayDataset


@dataclass(frozen=True)
class LoaderConfig:
    """``training.loader`` (units and choices in conf/base/parameters_training.yml)."""

    implementation: Literal["streaming", "in_memory"] = "in_memory"
    num_workers: int = 0  # DataLoader worker processes
    block_days: int = 32  # streaming only: trading days per read block
    target: str = "next_close"  # the global `label` (TrainingConfig.from_params): close | next_close | next_open
    universe: str = "all"  # all | investable

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> LoaderConfig:
        from atft_kedro.config import from_block

        return from_block(cls, params, "training.loader")


IMPLEMENTATIONS: dict[str, type[StreamingDayDataset] | type[InMemoryDayDataset]] = {
    "streaming": StreamingDayDataset,
    "in_memory": InMemoryDayDataset,
}


def make_day_dataset(
    implementation: Literal["streaming", "in_memory"] = "streaming",
    *,
    dates: Sequence[dt.date | str] | None,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    **source: Any,
) -> DayDataset:
    """``StreamingDayDataset`` or ``InMemoryDayDataset`` of ``dates`` in the order of
    (``shuffle``, ``seed``, ``epoch``); ``source``: the ``DaySource`` fields (``block_days`` only
    applies to streaming)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"loader.implementation: {implementation!r}, want 'streaming' or 'in_memory'"
        )
    return IMPLEMENTATIONS[implementation](
        DaySource(**source), dates, shuffle=shuffle, seed=seed, epoch=epoch
    )


def as_is(batch: Any) -> Any:
    """The DataLoader's collate function: a day batch is already tensors.

    The default (``default_convert``) walks every element recursively, including the ~N code
    strings of a batch: half of the in-memory loader's time per batch.
    """
    return batch


def day_loader(
    dataset: DayDataset, num_workers: int = 0, sampler: Sequence[int] | None = None
) -> DataLoader:
    """A DataLoader yielding one day batch at a time, in the dataset's order for its epoch.

    Call ``dataset.set_epoch(e)`` and then this (or iterate a fresh DataLoader) each epoch; workers
    are not persistent, so every epoch sees the current epoch number. ``sampler`` (in-memory only)
    replaces the epoch's order, e.g. with a subset of it.
    """
    if sampler is None and isinstance(dataset, InMemoryDayDataset):
        sampler = dataset.order()
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=as_is,
        persistent_workers=False,
    )
