"""Assemble the ``features`` table: every registry family, masks and targets for each panel row.

Stages: validate the panel (day-major, unique keys); index it on the market's session calendar;
one integer sort gives the (Code, Date) order; universe-wide market and sector series; then
chunks of whole codes, each laid on the session grid, with its date-level columns looked up by
session index (market, sector, flows) or as of the date (statements), its per-code time-series
families computed on whole columns, and its outputs kept as Float32 (NaN = missing); the chunks
scattered back to (Date, Code) order column by column; per-Date cross-sectional normalisation;
validity masks.

Sessions, not rows. Every lag, window and target counts market sessions. Between a code's first
and last row, a session without a row (a suspension, or a file that leaves out no-trade days) gets
a filler row treated like J-Quants' own no-trade row: no prices, zero volume and turnover, the
close carried forward. Fillers occupy their session in every window and are dropped before output,
so ``ret_5d`` is always five sessions and ``target_1d`` spans exactly one session or is NaN.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from atft_kedro.features import registry
from atft_kedro.features.cross_section import CS_METHODS, cs_normalise
from atft_kedro.features.flows import FLOW_COLUMNS, SECTION_OF_MARKET, flow_frame
from atft_kedro.features.market import market_frame, market_index, stock_market_exprs
from atft_kedro.features.returns_volatility import (
    Stages,
    merge_stages,
    prepare_bars,
    returns_exprs,
    volatility_exprs,
)
from atft_kedro.features.sector import relative_to_sector_exprs, sector_frame
from atft_kedro.features.statements import STATEMENT_COLUMNS, statement_frame
from atft_kedro.features.targets import target_exprs
from atft_kedro.features.technicals import ma_gap_exprs, range_volume_exprs, technical_exprs
from atft_kedro.features.universe import (
    PRICE,
    TURNOVER,
    UniverseConfig,
    investable_exprs,
    raw_close_expr,
    relative_floors,
    resolve_rules,
)

log = logging.getLogger(__name__)

KEYS = ["Date", "Code", "market", "sector33", "sector17"]
PANEL_COLUMNS = {
    "Date": pl.Date,
    "Code": pl.Utf8,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "turnover": pl.Float64,
    "market": pl.Utf8,
    "sector33": pl.Utf8,
    "sector17": pl.Utf8,
}
SECTOR_COLUMNS = ["sec_ret_1d", "sec_mom_5d", "sec_mom_20d", "sec_vol_20d", "sec_breadth"]
MARKET_COLUMNS = registry.family_features("market")


@dataclass(frozen=True)
class FeaturesConfig:
    """The `features` block (conf/base/parameters_data_processing.yml)."""

    cs_method: str = "zscore"  # zscore | rank_gauss
    clip: float = 5.0  # bound on |normalised value|
    market_close: str = "15:00"  # statements disclosed before it count the same day
    calendar: str = "auto"  # auto | tse | data

    @classmethod
    def from_params(cls, params: dict | None) -> FeaturesConfig:
        from atft_kedro.config import from_block

        return from_block(cls, params, "features")


def _check_columns(table: str, df: pl.DataFrame, required: list[str]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing}; has {df.columns}")


def validate_panel(panel: pl.DataFrame) -> pl.DataFrame:
    """Check the panel's columns and keys; return it cast to the contract's dtypes, sorted by
    (Date, Code) (a no-op when it already is)."""
    _check_columns("panel", panel, list(PANEL_COLUMNS))
    panel = panel.with_columns(pl.col(c).cast(t) for c, t in PANEL_COLUMNS.items())
    nulls = panel.filter(pl.col("Date").is_null() | pl.col("Code").is_null())
    if nulls.height:
        raise ValueError(
            f"panel: null Date or Code in {nulls.height} row(s), first: {nulls.row(0)}"
        )
    date, code = pl.col("Date"), pl.col("Code")
    same_day = date == date.shift(1)
    in_order = ((date > date.shift(1)) | (same_day & (code > code.shift(1)))).fill_null(True)
    if not panel.select(in_order.all()).item():
        panel = panel.sort("Date", "Code")
    # Sorted by (Date, Code), a repeated key sits on the row right after its first occurrence.
    dup = panel.filter(same_day & (code == code.shift(1)))
    if dup.height:
        first = dup.row(0, named=True)
        raise ValueError(
            f"panel: (Date, Code) is not unique: {dup.height} duplicated rows "
            f"(first: Code {first['Code']} on {first['Date']})"
        )
    return panel


def session_calendar(
    panel: pl.DataFrame, sessions: Sequence[dt.date] | None = None
) -> pl.DataFrame:
    """The market's sessions (Date, day_idx): the union of the panel's dates and ``sessions``
    (e.g. the TSE calendar over the panel's span), ascending."""
    dates = panel.get_column("Date").unique()
    if sessions is not None:
        first, last = dates.min(), dates.max()
        extra = pl.Series("Date", list(sessions), dtype=pl.Date)
        dates = pl.concat([dates, extra.filter(extra.is_between(first, last))]).unique()
    return pl.DataFrame({"Date": dates.sort()}).with_columns(
        day_idx=pl.int_range(pl.len(), dtype=pl.Int32)
    )


def _code_major_order(
    panel: pl.DataFrame, codes: pl.Series, calendar: pl.DataFrame
) -> tuple[pl.Series, np.ndarray, pl.Series]:
    """Row order of the day-major ``panel`` sorted by (Code, Date), each code's end in that order,
    and each row's session index in ``calendar``.

    Sorting one integer key (code rank x sessions + session index) is much cheaper than sorting
    strings.
    """
    code_idx = pl.col("Code").replace_strict(codes, range(len(codes)), return_dtype=pl.Int64)
    day = calendar.get_column("Date").search_sorted(panel.get_column("Date")).cast(pl.Int64)
    keys = panel.select(code=code_idx, day=day)
    order = keys.select((pl.col("code") * calendar.height + pl.col("day")).arg_sort())["code"]
    ends = np.cumsum(np.bincount(keys["code"].to_numpy(), minlength=len(codes)))
    return order, ends, keys["day"].cast(pl.Int32)


REAL = "_real"
LISTING = ("market", "sector33", "sector17")


def on_sessions(stocks: pl.DataFrame, dates: pl.Series) -> pl.DataFrame:
    """Whole codes in (Code, Date) order with ``_day`` → the same rows plus a filler row for every
    session between a code's first and last row that it lacks (OHLC null, volume and turnover 0,
    listing carried forward); ``_real`` is True on the panel's own rows.

    ``dates``: the session calendar (``_day`` indexes it).
    """
    spans = stocks.group_by("Code", maintain_order=True).agg(
        first=pl.col("_day").first(), last=pl.col("_day").last()
    )
    real = stocks.with_columns(pl.lit(True).alias(REAL))
    if int((spans["last"] - spans["first"] + 1).sum()) == stocks.height:
        return real  # no code misses a session
    grid = spans.select(
        "Code", _day=pl.int_ranges("first", pl.col("last") + 1, dtype=pl.Int32)
    ).explode("_day")
    dense = grid.join(real, on=["Code", "_day"], how="left", maintain_order="left")
    filler = pl.col(REAL).is_null()
    return dense.with_columns(
        dates.gather(dense.get_column("_day")).alias("Date"),
        *[pl.when(filler).then(0.0).otherwise(pl.col(c)).alias(c) for c in ("volume", "turnover")],
        *[
            pl.when(filler).then(pl.col(c).forward_fill().over("Code")).otherwise(pl.col(c))
            for c in LISTING
            if c in dense.columns
        ],
        pl.col(REAL).fill_null(False),
    ).select(real.columns)


def _chunk_edges(code_ends: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges of the code-major order, cut only at code boundaries, about ``chunk_rows`` each."""
    n = int(code_ends[-1]) if len(code_ends) else 0
    targets = np.arange(chunk_rows, n, max(1, chunk_rows))
    cuts = code_ends[np.minimum(np.searchsorted(code_ends, targets), len(code_ends) - 1)]
    edges = np.unique(np.concatenate([[0], cuts, [n]]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _sector_and_market_returns(
    rows: Callable[[int, int], pl.LazyFrame], edges: list[tuple[int, int]]
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per-date sums over the universe, chunk by chunk: (Date, r) means and sector33 sums."""
    parts = []
    for a, b in edges:
        parts.append(
            prepare_bars(rows(a, b))
            .filter(pl.col(REAL) & pl.col("r").is_not_null())
            .group_by("Date", "sector33")
            .agg(sum_r=pl.col("r").sum(), n=pl.len(), n_up=(pl.col("r") > 0).sum())
            .collect()
        )
    sums = pl.concat(parts).group_by("Date", "sector33").agg(pl.col("sum_r", "n", "n_up").sum())
    market_r = sums.group_by("Date").agg(r=pl.col("sum_r").sum() / pl.col("n").sum())
    return market_r.lazy(), sums.lazy()


@dataclass(frozen=True)
class _DayTable:
    """A date-level table laid out densely: row ``day * len(values) + k`` holds trading day
    ``day`` and key value ``values[k]`` (or row ``day`` without a key), so each panel row finds
    its row by arithmetic and one gather instead of a hash join."""

    grid: pl.DataFrame
    key: str | None = None
    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, table: pl.DataFrame, calendar: pl.DataFrame, key: str | None = None) -> _DayTable:
        cells = calendar.select("Date")
        values: tuple[str, ...] = ()
        if key is not None:
            values = tuple(table[key].drop_nulls().unique().sort().to_list())
            cells = cells.join(pl.DataFrame({key: values}, schema={key: pl.Utf8}), how="cross")
        on = ["Date"] if key is None else ["Date", key]
        grid = cells.join(table, on=on, how="left", maintain_order="left").drop(on)
        return cls(grid, key, values)

    def rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The table's row for each row of ``frame`` (which has ``_day`` and the key column)."""
        index = pl.col("_day").cast(pl.Int64)
        if self.key is not None:
            k = pl.col(self.key).replace_strict(
                self.values, range(len(self.values)), default=None, return_dtype=pl.Int64
            )
            index = index * len(self.values) + k
        return self.grid.select(pl.all().gather(frame.select(index).to_series()))


def _missing(n: int, names: list[str]) -> pl.DataFrame:
    """``n`` rows of null Float64 columns ``names`` (a family whose table is absent)."""
    return pl.select(pl.repeat(None, n, dtype=pl.Float64).alias(c) for c in names)


class _DateTables(NamedTuple):
    """The date-level tables every code chunk looks up (flows and statements may be absent)."""

    market: _DayTable
    sectors: _DayTable
    flows: _DayTable | None
    statements: pl.DataFrame | None  # effective date and its session index (_eff, _eff_idx)


def _date_tables(
    calendar: pl.DataFrame,
    market_r: pl.LazyFrame,
    sector_sums: pl.LazyFrame,
    *,
    topix: pl.DataFrame | None,
    trades_spec: pl.DataFrame | None,
    statements: pl.DataFrame | None,
    market_close: str,
) -> _DateTables:
    """Market, sector, flow and statement tables on the session calendar."""
    dates = calendar.select("Date")
    mkt = _DayTable.of(market_frame(market_index(dates, topix, market_r)), calendar)
    sectors = _DayTable.of(sector_frame(sector_sums).collect(), calendar, "sector33")
    flows = None
    if trades_spec is not None and trades_spec.height > 0:
        flows = _DayTable.of(flow_frame(trades_spec, dates), calendar, "Section")
    else:
        log.warning("no trades_spec table: flow features are NaN with is_flows_valid = 0")
    stmts = None
    if statements is not None and statements.height > 0:
        stmts = statement_frame(statements, dates, market_close)
        stmts = stmts.join(calendar, on="Date").rename({"Date": "_eff", "day_idx": "_eff_idx"})
    else:
        log.warning("no statements table: statement features are NaN with is_statements_valid = 0")
    return _DateTables(mkt, sectors, flows, stmts)


def _context(stocks: pl.DataFrame, tables: _DateTables) -> pl.DataFrame:
    """Date-level and as-of columns for each row of ``stocks`` (code-major rows, whole codes),
    row-aligned with it."""
    mkt, sectors, flows, stmts = tables
    columns = [mkt.rows(stocks), sectors.rows(stocks)]
    if flows is not None:
        section = pl.col("market").replace_strict(SECTION_OF_MARKET, default=None)
        columns.append(flows.rows(stocks.with_columns(Section=section)))
    else:
        columns.append(_missing(stocks.height, FLOW_COLUMNS))
    if stmts is not None:
        first, last = stocks["Code"][0], stocks["Code"][-1]
        known = stocks.select("Code", "Date", "_day").join_asof(
            stmts.filter(pl.col("Code").is_between(pl.lit(first), pl.lit(last))).sort(
                "Code", "_eff"
            ),
            left_on="Date",
            right_on="_eff",
            by="Code",
            strategy="backward",
            check_sortedness=False,
        )
        days_since = (pl.col("_day") - pl.col("_eff_idx")).cast(pl.Float64)
        columns.append(known.select(*STATEMENT_COLUMNS, stmt_days_since=days_since))
    else:
        columns.append(_missing(stocks.height, [*STATEMENT_COLUMNS, "stmt_days_since"]))
    return pl.concat(columns, how="horizontal")


def build_features(
    panel: pl.DataFrame,
    topix: pl.DataFrame | None = None,
    trades_spec: pl.DataFrame | None = None,
    statements: pl.DataFrame | None = None,
    *,
    horizons: tuple[int, ...] | list[int] = (1, 5, 10, 20),
    cs_method: str = "zscore",
    clip: float = 5.0,
    market_close: str = "15:00",
    sessions: Sequence[dt.date] | None = None,
    universe: UniverseConfig | None = None,
    chunk_rows: int = 250_000,
) -> pl.DataFrame:
    """The ``features`` table (docs/contracts.md) for every row of ``panel``.

    Args:
        panel: Date, Code, open, high, low, close, volume, turnover, market, sector33, sector17
            (adjusted, point in time), optionally adj_factor (for the quoted price; 1 if absent).
        topix, trades_spec, statements: optional canonical tables; a missing one leaves its
            family NaN with mask 0 (the market family falls back to an equal-weight index).
        horizons: target horizons in trading days.
        cs_method: ``zscore`` | ``rank_gauss`` | ``none`` (raw values; for inspection and tests).
        clip: bound on the absolute cross-sectional score.
        market_close: ``HH:MM``; statements disclosed earlier are effective the same day.
        sessions: the market's session calendar (e.g. the TSE's); the sessions are its dates
            within the panel's span together with the panel's own dates (None: the panel's dates).
        universe: thresholds of the ``universe`` column (default ``UniverseConfig()``).
        chunk_rows: about this many panel rows go through the per-code stage at once (bounds the
            memory of the float64 intermediates; whole codes per chunk, so the result does not
            depend on it beyond float64 rounding).

    Returns:
        Date, Code, market, sector33, sector17, features (Float32, registry order, NaN where
        missing), masks (Int8), ``universe`` (Int8), the targets of ``registry.target_names``
        (Float32, NaN where unknown); sorted by Date, Code.
    """
    if cs_method not in CS_METHODS:
        raise ValueError(f"cs_method must be one of {CS_METHODS}, got {cs_method!r}")
    targets = registry.target_names(horizons)
    panel = validate_panel(panel)  # day-major from here on
    calendar = session_calendar(panel, sessions)
    chunks = _code_chunks(panel, calendar, chunk_rows)
    universe = universe or UniverseConfig()
    tick_rule, floors = resolve_rules(
        universe, chunks.source.select(raw_close_expr(by="Code"))["_raw_close"]
    )
    # Universe-wide series first (market index, sector returns); then each code chunk alone.
    market_r, sector_sums = _sector_and_market_returns(
        lambda a, b: chunks.rows(a, b).lazy(), chunks.edges
    )
    tables = _date_tables(
        calendar,
        market_r,
        sector_sums,
        topix=topix,
        trades_spec=trades_spec,
        statements=statements,
        market_close=market_close,
    )
    stages = _per_code_stages(horizons, investable_exprs(universe, tick_rule, floors))
    per_code = _per_code_table(chunks, tables, stages, _outputs(targets, floors))
    out = pl.concat([panel.select(KEYS), per_code], how="horizontal")
    if floors == "relative":  # the day's cross-section: after every code is in
        out = relative_floors(out, universe)
    return _with_masks(cs_normalise(out, registry.cs_normalised_names(), cs_method, clip), targets)


class _CodeChunks(NamedTuple):
    """The panel in (Code, Date) order, cut into chunks of whole codes."""

    source: pl.DataFrame  # PANEL_COLUMNS, adj_factor (Float64) and _day, in day-major order
    order: pl.Series  # the rows of ``source`` in (Code, Date) order
    dates: pl.Series  # the session calendar (``_day`` indexes it)
    edges: list[tuple[int, int]]  # the chunks: row ranges of ``order``

    def rows(self, a: int, b: int) -> pl.DataFrame:
        """Panel rows a..b of the (Code, Date) order (whole codes) on the session grid."""
        return on_sessions(self.source.gather(self.order[a:b]), self.dates)


def _code_chunks(panel: pl.DataFrame, calendar: pl.DataFrame, chunk_rows: int) -> _CodeChunks:
    """The validated (day-major) ``panel`` with its session index, its (Code, Date) order and that
    order cut into chunks of about ``chunk_rows`` rows."""
    codes = panel["Code"].unique().sort()
    order, code_ends, day = _code_major_order(panel, codes, calendar)
    factor = pl.col("adj_factor") if "adj_factor" in panel.columns else pl.lit(1.0)
    source = panel.select(*PANEL_COLUMNS, adj_factor=factor.cast(pl.Float64), _day=day)
    dates = calendar.get_column("Date")
    return _CodeChunks(source, order, dates, _chunk_edges(code_ends, chunk_rows))


def _outputs(targets: list[str], floors: str) -> list[pl.Expr | str]:
    """What the per-code stage keeps: features (Float32), is_topix_valid, universe, the inputs of
    relative floors (when ``floors == "relative"``) and targets (Float32)."""
    topix_valid = pl.col("is_topix_valid").fill_null(0)
    floor_inputs = [PRICE, TURNOVER] if floors == "relative" else []
    return [
        *[_float32(c) for c in registry.feature_names("features")],
        topix_valid,
        "universe",
        *floor_inputs,
        *[_float32(c) for c in targets],
    ]


def _per_code_table(
    chunks: _CodeChunks, tables: _DateTables, stages: Stages, outputs: list[pl.Expr | str]
) -> pl.DataFrame:
    """The ``outputs`` of every panel row in day-major order, computed chunk by chunk (n rows)."""
    day_major = _DayMajorColumns(chunks.order)
    for a, b in chunks.edges:
        stocks = chunks.rows(a, b)
        frame = pl.concat([stocks, _context(stocks, tables)], how="horizontal").lazy()
        day_major.put(a, _per_code_features(frame, stages).select(outputs).collect())
    return day_major.frame()


def _per_code_stages(horizons: Sequence[int], investable: list[pl.Expr]) -> Stages:
    """The per-code expression stages, merged so that each stage reads only earlier ones."""
    return merge_stages(
        returns_exprs(),
        volatility_exprs(),
        ma_gap_exprs(),
        range_volume_exprs(),
        technical_exprs(),
        stock_market_exprs(),
        [target_exprs(horizons)],
        [investable],
    )


def _per_code_features(frame: pl.LazyFrame, stages: Stages) -> pl.LazyFrame:
    """A chunk of whole codes on the session grid, with its date context: every per-code column.

    The grid's no-trade fillers are dropped last, after every window has counted them.
    """
    frame = prepare_bars(frame).with_columns(raw_close_expr())
    for stage in stages:
        frame = frame.with_columns(stage)
    return frame.with_columns(relative_to_sector_exprs()).filter(pl.col(REAL))


def _with_masks(out: pl.DataFrame, targets: list[str]) -> pl.DataFrame:
    """The contract's column order, with each features-stage family's validity mask."""
    masks = [
        pl.all_horizontal(pl.col(registry.family_features(f)).is_not_nan())
        .cast(pl.Int8)
        .alias(f"is_{f}_valid")
        for f in registry.families("features")
    ]
    names = registry.feature_names("features")
    return out.select(*KEYS, *names, *masks, "is_topix_valid", "universe", *targets)


#: Families computed from the panel alone (no date-level tables), as stage builders.
PANEL_FAMILIES = {
    "returns": returns_exprs,
    "volatility": volatility_exprs,
    "ma_gap": ma_gap_exprs,
    "range_volume": range_volume_exprs,
    "technicals": technical_exprs,
}


def panel_features(
    panel: pl.DataFrame, families: tuple[str, ...] | list[str], chunk_rows: int = 250_000
) -> pl.DataFrame:
    """Raw values of panel-only ``families`` (keys of ``PANEL_FAMILIES``), not normalised.

    The same expressions as ``build_features``, without the date-level tables, masks or
    normalisation (for inspection and like-for-like benchmarks). Returns Date, Code and the
    families' features (Float32, NaN where missing) in (Code, Date) order.
    """
    unknown = [f for f in families if f not in PANEL_FAMILIES]
    if unknown:
        raise ValueError(f"panel_features: not panel-only families {unknown}")
    panel = validate_panel(panel)
    calendar = session_calendar(panel)
    order, code_ends, day = _code_major_order(panel, panel["Code"].unique().sort(), calendar)
    source = panel.with_columns(_day=day)
    stages = merge_stages(*(PANEL_FAMILIES[f]() for f in families))
    names = [c for f in families for c in registry.family_features(f)]
    parts = []
    for a, b in _chunk_edges(code_ends, chunk_rows):
        frame = prepare_bars(on_sessions(source.gather(order[a:b]), calendar["Date"]).lazy())
        for stage in stages:
            frame = frame.with_columns(stage)
        frame = frame.filter(pl.col(REAL))
        parts.append(frame.select("Date", "Code", *[_float32(c) for c in names]).collect())
    return pl.concat(parts)


def _float32(name: str) -> pl.Expr:
    """The column as Float32 with NaN wherever it is missing (null, NaN or +-inf)."""
    x = pl.col(name).cast(pl.Float32)
    return pl.when(x.is_finite()).then(x).otherwise(pl.lit(float("nan"), pl.Float32)).alias(name)


class _DayMajorColumns:
    """Output columns in the panel's (Date, Code) row order, filled chunk by chunk.

    Each code-major chunk is scattered straight into preallocated arrays, so the table exists once
    (no code-major copy to reorder later). Columns hold no nulls (NaN marks missing), so the
    scatter is a plain numpy assignment.
    """

    def __init__(self, order: pl.Series) -> None:
        self.position = order.to_numpy().astype(np.intp)  # code-major row i -> day-major row
        self.columns: dict[str, np.ndarray] = {}

    def put(self, start: int, chunk: pl.DataFrame) -> None:
        """Place ``chunk``, code-major rows ``start .. start + height``."""
        rows = self.position[start : start + chunk.height]
        for name in chunk.columns:
            values = chunk.get_column(name).to_numpy()
            if name not in self.columns:
                self.columns[name] = np.empty(len(self.position), dtype=values.dtype)
            self.columns[name][rows] = values

    def frame(self) -> pl.DataFrame:
        columns, self.columns = self.columns, {}
        return pl.DataFrame([pl.Series(name, values) for name, values in columns.items()])
