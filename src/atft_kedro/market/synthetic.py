"""A J-Quants-shaped synthetic market with a planted, known alpha.

:func:`generate_market` returns the raw tables of ``docs/contracts.md`` (``daily_quotes``,
``listed_info``, ``topix``, ``trades_spec``, ``statements``) plus three evaluation-only tables:
``oracle_alpha``, the planted expected forward returns, ``alpha_components``, each planted
component's part of them (close to close and with next-session entry), and ``latent_clusters``,
each code's latent lead-lag cluster (from which the observable ceiling is built). :func:`write_market` streams a large preset to Parquet
chunk by chunk. The model and its parameters are documented in
:mod:`atft_kedro.market.synthetic_config`.

Randomness: one ``np.random.SeedSequence(seed)`` spawns the universe, the market factors, the
investor flows and one generator per block of 64 codes, so results are deterministic per seed and
independent of the chunk size.

Timeline: ``burn_in_days`` TSE sessions before ``start`` (not emitted), ``n_days`` emitted
sessions, and ``TAIL_DAYS`` sessions after them, simulated so that the oracle of the last emitted
days sees the calendar ahead (the tail's returns are never emitted).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from atft_kedro.market.calendar import tse_sessions_before, tse_sessions_from
from atft_kedro.market.synthetic_config import (
    HORIZONS,
    PRESETS,
    SyntheticMarketConfig,
    market_config,
)
from atft_kedro.market.synthetic_factors import simulate_state, trades_spec_frame
from atft_kedro.market.synthetic_stocks import BLOCK, Chunk, ChunkResult, simulate_chunk
from atft_kedro.market.synthetic_universe import draw_universe, listed_info_frame

__all__ = [
    "PRESETS",
    "SyntheticMarket",
    "SyntheticMarketConfig",
    "generate_market",
    "market_config",
    "write_market",
]

TAIL_DAYS = max(HORIZONS) + 10
TOPIX_BASE = 1800.0  # index level on the session before the first emitted one
TABLES = (
    "daily_quotes",
    "listed_info",
    "topix",
    "trades_spec",
    "statements",
    "oracle_alpha",
    "alpha_components",
    "latent_clusters",
)
_PER_CODE = ("daily_quotes", "statements", "oracle_alpha", "alpha_components")
_SORT = {
    "daily_quotes": ("Date", "Code"),
    "oracle_alpha": ("Date", "Code"),
    "alpha_components": ("Date", "Code"),
    "statements": ("DisclosedDate", "Code"),
}


class SyntheticMarket:
    """The market-wide part of one synthetic market; per-code tables come from :meth:`chunks`."""

    def __init__(self, config: SyntheticMarketConfig, seed: int) -> None:
        self.config = cfg = config
        start = tse_sessions_from(cfg.start, 1)[0]
        before = tse_sessions_before(start, cfg.burn_in_days)
        sessions = before + tse_sessions_from(start, cfg.n_days + TAIL_DAYS)
        self.dates = np.array(sessions, dtype="datetime64[D]")
        self.first, self.last = len(before), len(before) + cfg.n_days  # emitted [first, last)

        universe_seed, market_seed, flows_seed, stocks_seed = np.random.SeedSequence(seed).spawn(4)
        self.universe = draw_universe(
            cfg, np.random.default_rng(universe_seed), self.first, cfg.n_days
        )
        self.state = simulate_state(cfg, np.random.default_rng(market_seed), self.dates)
        self._flows_seed = flows_seed
        self._block_seeds = stocks_seed.spawn(math.ceil(cfg.n_codes / BLOCK))
        known = self.state.flow_week[self.first : self.last]
        flows = self.state.flow[known[known >= 0]]
        self.flow_scale = float(np.sqrt(np.mean(flows**2))) if flows.size else 1.0

    def listed_info(self) -> pl.DataFrame:
        return listed_info_frame(self.universe, self.dates, self.first, self.last)

    def latent_clusters(self) -> pl.DataFrame:
        """Code, cluster (Int32): every code's latent lead-lag cluster. Evaluation only."""
        return pl.DataFrame(
            {"Code": self.universe.codes, "cluster": self.universe.cluster},
            schema={"Code": pl.Utf8, "cluster": pl.Int32},
        ).sort("Code")

    def trades_spec(self) -> pl.DataFrame:
        rng = np.random.default_rng(self._flows_seed)
        return trades_spec_frame(self.state, rng, self.first, self.last)

    def chunks(self, chunk_codes: int | None = None) -> Iterator[ChunkResult]:
        """Per-code tables, ``chunk_codes`` codes at a time (rounded up to whole blocks)."""
        size = chunk_codes or self.config.chunk_codes
        blocks_per_chunk = max(1, math.ceil(size / BLOCK))
        n_blocks = len(self._block_seeds)
        for b0 in range(0, n_blocks, blocks_per_chunk):
            b1 = min(b0 + blocks_per_chunk, n_blocks)
            cols = slice(b0 * BLOCK, min(b1 * BLOCK, self.config.n_codes))
            chunk = Chunk(
                self.config, self.universe, self.state, cols, self.first, self.last, self.flow_scale
            )
            yield simulate_chunk(chunk, self._block_seeds[b0:b1])

    def topix(self, index_sums: np.ndarray) -> pl.DataFrame:
        """Cap-weighted index from the summed :attr:`ChunkResult.index_sums` of all chunks."""
        cap = index_sums[4]
        ret = np.divide(index_sums[:4], cap, out=np.zeros_like(index_sums[:4]), where=cap > 0)
        span = slice(self.first, self.last)
        close = TOPIX_BASE * np.cumprod(1.0 + ret[3, span])
        prev = np.r_[TOPIX_BASE, close[:-1]]
        open_, high, low = (prev * (1.0 + ret[k, span]) for k in range(3))
        return pl.DataFrame(
            {
                "Date": self.dates[span],
                "Open": np.round(open_, 2),
                "High": np.round(np.maximum.reduce([high, open_, close]), 2),
                "Low": np.round(np.minimum.reduce([low, open_, close]), 2),
                "Close": np.round(close, 2),
            }
        ).with_columns(pl.col("Date").cast(pl.Date))


def generate_market(preset: str = "small", seed: int = 42, **overrides) -> dict[str, pl.DataFrame]:
    """All raw tables of a synthetic market, in memory.

    Returns ``{daily_quotes, listed_info, topix, trades_spec, statements, oracle_alpha,
    alpha_components, latent_clusters}`` with the canonical columns of ``docs/contracts.md``.
    ``overrides`` are fields of :class:`SyntheticMarketConfig`.
    """
    market = SyntheticMarket(market_config(preset, **overrides), seed)
    parts: dict[str, list[pl.DataFrame]] = {}
    index_sums: np.ndarray | float = 0.0  # 0.0 + the first chunk's sums: an array
    for chunk in market.chunks():
        index_sums = index_sums + chunk.index_sums
        for name, frame in chunk.tables.items():
            parts.setdefault(name, []).append(frame)
    tables = {name: pl.concat(frames).sort(*_SORT[name]) for name, frames in parts.items()}
    tables["listed_info"] = market.listed_info()
    tables["topix"] = market.topix(np.asarray(index_sums))
    tables["trades_spec"] = market.trades_spec()
    tables["latent_clusters"] = market.latent_clusters()
    return {name: tables[name] for name in TABLES}


def write_market(
    path: str | Path, preset: str = "full", seed: int = 42, **overrides
) -> dict[str, Path]:
    """Write the tables as ``path/<table>.parquet``, one row group per chunk of codes.

    Peak memory is bounded by one chunk (``chunk_codes``), not by the market's size. Within a file,
    rows are sorted by (Date, Code) inside each chunk, not across chunks.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    market = SyntheticMarket(market_config(preset, **overrides), seed)
    files = {name: path / f"{name}.parquet" for name in TABLES}
    writers: dict[str, pq.ParquetWriter] = {}
    index_sums: np.ndarray | float = 0.0  # 0.0 + the first chunk's sums: an array
    try:
        for chunk in market.chunks():
            index_sums = index_sums + chunk.index_sums
            for name, frame in chunk.tables.items():
                table = frame.sort(*_SORT[name]).to_arrow()
                if name not in writers:
                    writers[name] = pq.ParquetWriter(files[name], table.schema)
                writers[name].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    market.listed_info().write_parquet(files["listed_info"])
    market.topix(np.asarray(index_sums)).write_parquet(files["topix"])
    market.trades_spec().write_parquet(files["trades_spec"])
    market.latent_clusters().write_parquet(files["latent_clusters"])
    return files
