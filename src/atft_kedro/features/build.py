"""Assemble the ``features`` table: every registry family, masks and targets for each panel row.

Stages: validate the panel; per-Code time-series families on (Code, Date)-sorted rows; date-level
market and sector series joined back; flows and statements joined as of the date; per-Date
cross-sectional normalisation; validity masks; targets; output sorted by (Date, Code).
"""

from __future__ import annotations

import logging

import polars as pl

from atft_kedro.features import registry
from atft_kedro.features.cross_section import cs_normalise_exprs
from atft_kedro.features.flows import FLOW_COLUMNS, SECTION_OF_MARKET, flow_frame
from atft_kedro.features.market import market_frame, market_index, stock_market_exprs
from atft_kedro.features.returns_volatility import prepare_bars, returns_exprs, volatility_exprs
from atft_kedro.features.sector import relative_to_sector_exprs, sector_frame
from atft_kedro.features.statements import STATEMENT_COLUMNS, statement_frame
from atft_kedro.features.targets import target_exprs
from atft_kedro.features.technicals import ma_gap_exprs, range_volume_exprs, technical_exprs

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


def _check_columns(table: str, df: pl.DataFrame, required: list[str]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing}; has {df.columns}")


def validate_panel(panel: pl.DataFrame) -> pl.DataFrame:
    """Check the panel's columns and keys; return it cast to the contract's dtypes."""
    _check_columns("panel", panel, list(PANEL_COLUMNS))
    panel = panel.with_columns(pl.col(c).cast(t) for c, t in PANEL_COLUMNS.items())
    nulls = panel.filter(pl.col("Date").is_null() | pl.col("Code").is_null())
    if nulls.height:
        raise ValueError(
            f"panel: null Date or Code in {nulls.height} row(s), first: {nulls.row(0)}"
        )
    dup = panel.filter(pl.struct("Date", "Code").is_duplicated())
    if dup.height:
        first = dup.row(0, named=True)
        raise ValueError(
            f"panel: (Date, Code) is not unique: {dup.height} duplicated rows "
            f"(first: Code {first['Code']} on {first['Date']})"
        )
    return panel


def _sector_and_market_returns(
    panel: pl.DataFrame, chunks: list[list[str]]
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per-date sums over the universe, chunk by chunk: (Date, r) means and sector33 sums."""
    parts = []
    for codes in chunks:
        rows = prepare_bars(panel.lazy().filter(pl.col("Code").is_in(codes)).sort("Code", "Date"))
        parts.append(
            rows.filter(pl.col("r").is_not_null())
            .group_by("Date", "sector33")
            .agg(sum_r=pl.col("r").sum(), n=pl.len(), n_up=(pl.col("r") > 0).sum())
            .collect()
        )
    sums = pl.concat(parts).group_by("Date", "sector33").agg(pl.col("sum_r", "n", "n_up").sum())
    market_r = sums.group_by("Date").agg(r=pl.col("sum_r").sum() / pl.col("n").sum())
    return market_r.lazy(), sums.lazy()


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
    chunk_rows: int = 500_000,
) -> pl.DataFrame:
    """The ``features`` table (docs/contracts.md) for every row of ``panel``.

    Args:
        panel: Date, Code, open, high, low, close, volume, turnover, market, sector33, sector17
            (adjusted, point in time). Its distinct dates are the trading calendar.
        topix, trades_spec, statements: optional canonical tables; a missing one leaves its
            family NaN with mask 0 (the market family falls back to an equal-weight index).
        horizons: target horizons in trading days.
        cs_method: ``zscore`` | ``rank_gauss`` | ``none`` (raw values; for inspection and tests).
        clip: bound on the absolute cross-sectional score.
        market_close: ``HH:MM``; statements disclosed earlier are effective the same day.
        chunk_rows: about this many panel rows go through the per-code stage at once (bounds the
            memory of the float64 intermediates; the result does not depend on it).

    Returns:
        Date, Code, market, sector33, sector17, features (Float32, registry order, NaN where
        missing), masks (Int8), ``target_{h}d`` (Float32, NaN where unknown); sorted by Date, Code.
    """
    names = registry.feature_names()
    targets = registry.target_names(horizons)
    panel = validate_panel(panel)
    calendar = panel.select(pl.col("Date").unique().sort())
    calendar = calendar.with_columns(day_idx=pl.int_range(pl.len(), dtype=pl.Int32))
    codes = panel["Code"].unique().sort().to_list()
    per_chunk = max(1, chunk_rows // max(1, calendar.height))
    chunks = [codes[i : i + per_chunk] for i in range(0, len(codes), per_chunk)]
    code_idx = pl.DataFrame({"Code": codes, "_code_idx": range(len(codes))}).lazy()

    # Universe-wide series first (market index, sector returns); then each code chunk alone.
    market_r, sector_sums = _sector_and_market_returns(panel, chunks)
    mkt = market_frame(market_index(calendar.select("Date"), topix, market_r)).lazy()
    sectors = sector_frame(sector_sums)
    flows = None
    if trades_spec is not None and trades_spec.height > 0:
        flows = flow_frame(trades_spec, calendar.select("Date")).lazy()
    else:
        log.warning("no trades_spec table: flow features are NaN with is_flows_valid = 0")
    stmts = None
    if statements is not None and statements.height > 0:
        stmts = statement_frame(statements, calendar.select("Date"), market_close)
        stmts = stmts.join(calendar, on="Date").rename({"Date": "_eff", "day_idx": "_eff_idx"})
    else:
        log.warning("no statements table: statement features are NaN with is_statements_valid = 0")

    parts = []
    for chunk in chunks:
        stocks = prepare_bars(panel.lazy().filter(pl.col("Code").is_in(chunk)).sort("Code", "Date"))
        stocks = stocks.join(mkt, on="Date", how="left", maintain_order="left").join(
            calendar.lazy(), on="Date", how="left", maintain_order="left"
        )
        stocks = stocks.with_columns(
            *returns_exprs(),
            *volatility_exprs(),
            *ma_gap_exprs(),
            *range_volume_exprs(),
            *technical_exprs(),
            *stock_market_exprs(),
            *target_exprs(horizons),
        )
        stocks = stocks.join(sectors, on=["Date", "sector33"], how="left", maintain_order="left")
        stocks = stocks.with_columns(*relative_to_sector_exprs())
        if flows is not None:
            section = pl.col("market").replace_strict(SECTION_OF_MARKET, default=None)
            stocks = stocks.with_columns(Section=section).join(
                flows, on=["Date", "Section"], how="left", maintain_order="left"
            )
        else:
            stocks = stocks.with_columns(pl.lit(None, pl.Float64).alias(c) for c in FLOW_COLUMNS)
        if stmts is not None:
            stocks = stocks.join_asof(
                stmts.lazy().filter(pl.col("Code").is_in(chunk)).sort("Code", "_eff"),
                left_on="Date",
                right_on="_eff",
                by="Code",
                strategy="backward",
                check_sortedness=False,
            ).with_columns(
                stmt_days_since=(pl.col("day_idx") - pl.col("_eff_idx")).cast(pl.Float64)
            )
        else:
            stocks = stocks.with_columns(
                pl.lit(None, pl.Float64).alias(c) for c in [*STATEMENT_COLUMNS, "stmt_days_since"]
            )
        parts.append(
            stocks.join(code_idx, on="Code", how="left", maintain_order="left")
            .select(
                *KEYS,
                (pl.col("day_idx").cast(pl.Int64) * len(codes) + pl.col("_code_idx")).alias(
                    "_order"
                ),
                *[_finite_or_null(c).cast(pl.Float32) for c in names],
                "is_topix_valid",
                *[_finite_or_null(c).cast(pl.Float32) for c in targets],
            )
            .collect()
        )
    out = _sort_day_major(pl.concat(parts, rechunk=False), "_order")
    del parts

    # Column by column, so that peak memory is the table plus a few columns.
    for expr in cs_normalise_exprs(registry.cs_normalised_names(), cs_method, clip):
        out = out.with_columns(expr.cast(pl.Float32))
    out = out.with_columns(
        *[
            pl.all_horizontal(pl.col(registry.family_features(f)).is_not_null())
            .cast(pl.Int8)
            .alias(f"is_{f}_valid")
            for f in registry.FAMILIES
        ],
        pl.col("is_topix_valid").fill_null(0).cast(pl.Int8),
    )
    for c in [*names, *targets]:
        out = out.with_columns(pl.col(c).fill_null(float("nan")))
    return out.select(*KEYS, *names, *registry.mask_names(), *targets)


def _finite_or_null(name: str) -> pl.Expr:
    """The column with NaN and +-inf as null (polars aggregations skip nulls, not NaN)."""
    return pl.when(pl.col(name).is_finite()).then(pl.col(name)).alias(name)


def _sort_day_major(df: pl.DataFrame, key: str) -> pl.DataFrame:
    """Sort by the integer ``key`` (day-major order) one column at a time, dropping ``key``.

    The table is never held twice: each column is freed once its sorted copy exists.
    """
    order = df.drop_in_place(key).arg_sort()
    columns = []
    for name in list(df.columns):
        columns.append(df.drop_in_place(name).gather(order))
    return pl.DataFrame(columns)
