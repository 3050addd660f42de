"""The day batch: one trading day's cross-section of stock windows (docs/contracts.md).

Window rule. The window of stock s for day t covers the last L days of the trading *calendar*
(the features table's distinct dates) ending at t, not the last L rows of s. A calendar day on which
s has no row (suspension, not yet listed) is zeros in ``x`` and False in ``mask``; so are days
before the first calendar day. The batch holds the stocks with a row on day t (optionally only
those with at least one finite target), sorted by code; its last step ``mask[:, -1]`` is all True.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import numpy as np
import torch

from atft_kedro.loader.day_table import DayRows, to_date


class DayBatch(TypedDict):
    x: torch.Tensor  # [N, L, F] float32, scaled, NaN → 0, oldest day first
    mask: torch.Tensor  # [N, L] bool, True where the stock has a row that day
    y: dict[int, torch.Tensor]  # {h: [N] float32}, NaN kept
    y_mask: dict[int, torch.Tensor]  # {h: [N] bool}, True where y[h] is finite
    static: dict[str, torch.Tensor]  # {"market", "sector33": [N] int64}, 0 = unknown
    codes: list[str]  # [N], batch position i ↔ codes[i]
    date: dt.date
    edge_index: torch.Tensor  # [2, E] int64, positions in codes
    edge_attr: torch.Tensor  # [E, 3] float32, [corr, same_market, same_sector33]
    # multi-day batches only (collate_days)
    days: NotRequired[torch.Tensor]  # [N] int64, each stock's day 0..D−1
    n_days: NotRequired[int]  # D
    dates: NotRequired[list[dt.date]]  # the D dates


def stocks_of_day(rows: DayRows, require_target: bool) -> np.ndarray:
    """Row positions of day t's batch stocks: all rows, or those with a finite target."""
    if not require_target:
        return np.arange(rows.codes.size)
    return np.flatnonzero(np.isfinite(rows.y).any(axis=1))


def window_from_days(
    context: Sequence[DayRows | None], keys: np.ndarray, n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gather the windows of the stocks ``keys`` (sorted ``code_keys``) from L consecutive calendar
    days (None = a day before the calendar starts).

    Returns x [N, L, F] float32 and mask [N, L] bool. Vectorised per day (L lookups).
    """
    n, length = keys.size, len(context)
    x = np.zeros((n, length, n_features), dtype=np.float32)
    mask = np.zeros((n, length), dtype=bool)
    for step, rows in enumerate(context):
        if rows is None or rows.keys.size == 0 or n == 0:
            continue
        if rows.keys.size == n and np.array_equal(rows.keys, keys):  # same stocks: no lookup
            x[:, step], mask[:, step] = rows.x, True
            continue
        pos = np.clip(np.searchsorted(rows.keys, keys), 0, rows.keys.size - 1)
        hit = rows.keys[pos] == keys
        x[hit, step] = rows.x[pos[hit]]
        mask[:, step] = hit
    return x, mask


def build_day_batch(
    day: int,
    codes: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    y: np.ndarray,
    *,
    market: np.ndarray,
    sector33: np.ndarray,
    horizons: Sequence[int],
    edge_index: np.ndarray,
    edge_attr: np.ndarray,
) -> DayBatch:
    """Wrap numpy arrays of one day into the tensor contract (y [N, H] split by horizon)."""
    y_tensor = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    return DayBatch(
        x=torch.from_numpy(x),
        mask=torch.from_numpy(mask),
        y={h: y_tensor[:, j].clone() for j, h in enumerate(horizons)},
        y_mask={h: torch.isfinite(y_tensor[:, j]) for j, h in enumerate(horizons)},
        static={
            "market": torch.from_numpy(market.astype(np.int64)),
            "sector33": torch.from_numpy(sector33.astype(np.int64)),
        },
        codes=codes.tolist(),
        date=to_date(day),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(np.ascontiguousarray(edge_attr, dtype=np.float32)),
    )


def collate_days(batches: Sequence[DayBatch]) -> DayBatch:
    """D day batches as one: stocks stacked day after day, graphs block-diagonal.

    Adds ``days [N]`` (int64, each stock's day 0..D−1), ``n_days`` (D) and ``dates`` (D dates);
    ``date`` is the last day's and ``codes`` repeat across days. Days without stocks are left out.
    One batch is returned as it is, so a one-day step runs exactly the one-day code.
    """
    batches = [b for b in batches if len(b["codes"])] or list(batches[:1])
    if len(batches) == 1:
        return batches[0]
    sizes = torch.tensor([len(b["codes"]) for b in batches])
    offsets = torch.cumsum(sizes, 0) - sizes
    horizons = list(batches[0]["y"])
    return {
        "x": torch.cat([b["x"] for b in batches]),
        "mask": torch.cat([b["mask"] for b in batches]),
        "y": {h: torch.cat([b["y"][h] for b in batches]) for h in horizons},
        "y_mask": {h: torch.cat([b["y_mask"][h] for b in batches]) for h in horizons},
        "static": {k: torch.cat([b["static"][k] for b in batches]) for k in batches[0]["static"]},
        "codes": [c for b in batches for c in b["codes"]],
        "date": batches[-1]["date"],
        "edge_index": torch.cat(
            [b["edge_index"] + o for b, o in zip(batches, offsets.tolist(), strict=True)], dim=1
        ),
        "edge_attr": torch.cat([b["edge_attr"] for b in batches]),
        "days": torch.repeat_interleave(torch.arange(len(batches)), sizes),
        "n_days": len(batches),
        "dates": [b["date"] for b in batches],
    }


def assert_batch_contract(
    batch: Mapping, seq_len: int | None = None, n_features: int | None = None
) -> None:
    """Raise AssertionError naming the first violated rule of the day-batch contract."""
    x, mask = batch["x"], batch["mask"]
    assert x.dtype == torch.float32 and x.dim() == 3, (
        f"x: want float32 [N, L, F], got {x.dtype} {tuple(x.shape)}"
    )
    n, length, features = x.shape
    assert seq_len is None or length == seq_len, f"x: L = {length}, want {seq_len}"
    assert n_features is None or features == n_features, f"x: F = {features}, want {n_features}"
    assert torch.isfinite(x).all(), "x: non-finite values (NaN must become 0)"
    assert mask.dtype == torch.bool and tuple(mask.shape) == (n, length), (
        f"mask: want bool [{n}, {length}], got {mask.dtype} {tuple(mask.shape)}"
    )
    assert n == 0 or bool(mask[:, -1].all()), "mask: every batch stock must have a row on day t"
    assert not bool(x[~mask].any()), "x: non-zero values on days where mask is False"
    assert set(batch["y"]) == set(batch["y_mask"]), "y / y_mask: different horizons"
    _assert_targets(batch, n)
    for name in ("market", "sector33"):
        s = batch["static"][name]
        assert s.dtype == torch.int64 and tuple(s.shape) == (n,), (
            f"static[{name}]: want int64 [{n}]"
        )
        assert n == 0 or int(s.min()) >= 0, f"static[{name}]: negative index"
    codes = batch["codes"]
    assert len(codes) == n, f"codes: {len(codes)} codes for N = {n}"
    assert len(set(codes)) == n, "codes: duplicates"
    assert isinstance(batch["date"], dt.date), (
        f"date: want datetime.date, got {type(batch['date'])}"
    )
    _assert_graph(batch, n)


def _assert_targets(batch: Mapping, n: int) -> None:
    """The day-batch contract of ``y`` and ``y_mask``: per horizon, float32 [N] targets and a bool
    [N] mask that is exactly their finiteness."""
    for h, y in batch["y"].items():
        y_mask = batch["y_mask"][h]
        assert y.dtype == torch.float32 and tuple(y.shape) == (n,), (
            f"y[{h}]: want float32 [{n}], got {y.dtype} {tuple(y.shape)}"
        )
        assert y_mask.dtype == torch.bool and tuple(y_mask.shape) == (n,), (
            f"y_mask[{h}]: want bool [{n}]"
        )
        assert torch.equal(y_mask, torch.isfinite(y)), (
            f"y_mask[{h}]: must be exactly isfinite(y[{h}])"
        )


def _assert_graph(batch: Mapping, n: int) -> None:
    """The day-batch contract of the graph: int64 [2, E] edges between the N stocks, no
    self-loops, float32 [E, 3] edge attributes."""
    edge_index, edge_attr = batch["edge_index"], batch["edge_attr"]
    assert edge_index.dtype == torch.int64 and edge_index.dim() == 2 and edge_index.shape[0] == 2, (
        f"edge_index: want int64 [2, E], got {edge_index.dtype} {tuple(edge_index.shape)}"
    )
    e = edge_index.shape[1]
    assert edge_attr.dtype == torch.float32 and tuple(edge_attr.shape) == (e, 3), (
        f"edge_attr: want float32 [{e}, 3], got {tuple(edge_attr.shape)}"
    )
    if e:
        assert int(edge_index.min()) >= 0 and int(edge_index.max()) < n, (
            f"edge_index: values outside [0, {n})"
        )
        assert not bool((edge_index[0] == edge_index[1]).any()), "edge_index: self-loops"
