"""Purged walk-forward splits by trading date (Lopez de Prado's purging and embargo).

A fold is ``train | gap | val | gap | test`` on the trading calendar, with
``gap = purge_days + embargo_days`` and ``purge_days = seq_len + max_horizon - 1``: a training
sample dated d sees inputs from ``d - seq_len + 1`` and a label reaching ``d + max_horizon``, so no
training label overlaps any input or label of the next block. Folds step forward by ``test_days``;
the last fold's test block ends on the last date. The training block grows from the first date
(``expanding``) or keeps its last ``train_days`` (``rolling``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class SplitsConfig:
    """The `splits` block (conf/base/parameters_data_processing.yml)."""

    n_splits: int = 2
    mode: str = "expanding"  # expanding | rolling
    train_days: int | None = None  # rolling only: training block length, trading days
    embargo_days: int = 20
    val_days: int = 60
    test_days: int = 120

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> SplitsConfig:
        from atft_kedro.config import from_block

        return from_block(cls, params, "splits")


def purged_walk_forward(
    dates: Iterable[date | str],
    *,
    n_splits: int,
    seq_len: int,
    max_horizon: int,
    embargo_days: int,
    val_days: int,
    test_days: int,
    mode: str = "expanding",
    train_days: int | None = None,
) -> dict:
    """Walk-forward folds as inclusive ISO date ranges (the ``splits`` JSON of docs/contracts.md).

    Args:
        dates: the trading calendar (duplicates and order do not matter).
        n_splits: number of folds.
        seq_len: model input window, trading days.
        max_horizon: longest target horizon, trading days.
        embargo_days: extra trading days left out after each purge.
        val_days, test_days: block lengths, trading days.
        mode: ``expanding`` or ``rolling`` (then ``train_days`` is required).
        train_days: training block length for ``rolling``.

    Raises:
        ValueError: when the calendar is too short for the requested folds (says how many dates
            are needed) or the arguments are inconsistent.
    """
    calendar = sorted({date.fromisoformat(d) if isinstance(d, str) else d for d in dates})
    lengths = {
        "n_splits": n_splits,
        "seq_len": seq_len,
        "max_horizon": max_horizon,
        "val_days": val_days,
        "test_days": test_days,
    }
    _check_arguments(mode, train_days, lengths, embargo_days)
    train_span = train_days or 0  # set (checked above) wherever mode is "rolling"
    purge = seq_len + max_horizon - 1
    gap = purge + embargo_days
    min_train = train_span if mode == "rolling" else seq_len
    _check_calendar(calendar, n_splits, min_train, purge, embargo_days, val_days, test_days)
    rolling = train_span if mode == "rolling" else None
    folds = [
        _fold(calendar, k, n_splits, gap, val_days, test_days, rolling) for k in range(n_splits)
    ]
    return {
        "n_splits": n_splits,
        "purge_days": purge,
        "embargo_days": embargo_days,
        "seq_len": seq_len,
        "max_horizon": max_horizon,
        "mode": mode,
        "folds": folds,
    }


def _check_arguments(
    mode: str, train_days: int | None, lengths: dict[str, int], embargo_days: int
) -> None:
    """Raise a one-line ValueError naming the first inconsistent argument."""
    if mode not in ("expanding", "rolling"):
        raise ValueError(f"splits: mode must be 'expanding' or 'rolling', got {mode!r}")
    if mode == "rolling" and not train_days:
        raise ValueError("splits: mode 'rolling' needs train_days (trading days)")
    for name, value in lengths.items():
        if value < 1:
            raise ValueError(f"splits: {name} must be >= 1, got {value}")
    if embargo_days < 0:
        raise ValueError(f"splits: embargo_days must be >= 0, got {embargo_days}")


def _check_calendar(
    calendar: list[date],
    n_splits: int,
    min_train: int,
    purge: int,
    embargo_days: int,
    val_days: int,
    test_days: int,
) -> None:
    """Raise a ValueError, with the count it needs, when ``calendar`` is too short for the folds."""
    needed = min_train + 2 * (purge + embargo_days) + val_days + n_splits * test_days
    if len(calendar) < needed:
        raise ValueError(
            f"splits: {len(calendar)} trading dates ({calendar[0] if calendar else '-'} .. "
            f"{calendar[-1] if calendar else '-'}) are too few for {n_splits} folds: need "
            f"{needed} = train {min_train} + 2 x (purge {purge} + embargo {embargo_days}) + "
            f"val {val_days} + {n_splits} x test {test_days}"
        )


def _fold(
    calendar: list[date],
    k: int,
    n_splits: int,
    gap: int,
    val_days: int,
    test_days: int,
    train_span: int | None,
) -> dict[str, Any]:
    """Fold ``k`` of ``n_splits``: its train, val and test blocks as inclusive ISO date ranges.
    The training block starts on the first date (``train_span`` None: expanding) or keeps its last
    ``train_span`` dates (rolling)."""
    test_end = len(calendar) - 1 - (n_splits - 1 - k) * test_days
    test_start = test_end - test_days + 1
    val_end = test_start - gap - 1
    val_start = val_end - val_days + 1
    train_end = val_start - gap - 1
    train_start = 0 if train_span is None else train_end - train_span + 1
    return {
        "fold": k,
        "train": [calendar[train_start].isoformat(), calendar[train_end].isoformat()],
        "val": [calendar[val_start].isoformat(), calendar[val_end].isoformat()],
        "test": [calendar[test_start].isoformat(), calendar[test_end].isoformat()],
    }
