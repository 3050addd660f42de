"""Nodes of the data_processing pipeline: thin adapters from the catalog to the domain packages."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from atft_kedro.errors import ParameterError
from atft_kedro.features.build import FeaturesConfig, build_features
from atft_kedro.features.universe import UniverseConfig
from atft_kedro.loader.splits import SplitsConfig, purged_walk_forward
from atft_kedro.market.calendar import market_sessions
from atft_kedro.market.jquants_api import fetch_jquants, resolve_api_key
from atft_kedro.market.jquants_files import read_jquants_dir
from atft_kedro.market.panel import build_panel
from atft_kedro.market.schema import OPTIONAL_TABLES, empty_table
from atft_kedro.market.synthetic import generate_market

logger = logging.getLogger(__name__)

_ORACLE_SCHEMA = {"Date": pl.Date, "Code": pl.Utf8}
_CLUSTERS_SCHEMA = {"Code": pl.Utf8, "cluster": pl.Int32}
_SOURCES = ("synthetic", "jquants_files", "jquants_api")


def _source_tables(market: dict[str, Any], seed: int) -> dict[str, pl.DataFrame]:
    """{table: frame} from ``market.source``: the synthetic market, J-Quants files or the API."""
    source = market["source"]
    if source == "synthetic":
        synthetic = market.get("synthetic", {})
        tables = generate_market(market["preset"], seed=seed, **(synthetic.get("overrides") or {}))
    elif source == "jquants_files":
        tables = read_jquants_dir(market["jquants_files"]["path"])
    elif source == "jquants_api":
        api = market["jquants_api"]
        tables = fetch_jquants(
            api["cache_dir"],
            api["start"],
            api["end"],
            api_key=resolve_api_key(credentials_path=api["credentials_path"]),
            min_interval_s=api.get("min_interval_s", 1.0),
        )
    else:
        raise ParameterError(
            f"market.source: unknown source {source!r}; choose from {list(_SOURCES)}"
        )
    return tables


def ingest_market_node(market: dict[str, Any], seed: int) -> tuple[pl.DataFrame, ...]:
    """Canonical, validated raw tables from the configured source.

    Args:
        market: ``params:market`` (``source``: synthetic | jquants_files | jquants_api, plus the
            source's own block).
        seed: the global seed (drives the synthetic market).

    Returns:
        daily_quotes, listed_info, topix, trades_spec, statements, oracle_alpha, alpha_components,
        latent_clusters. An absent optional table is returned empty (zero rows, canonical
        columns); the three evaluation-only tables ``oracle_alpha``, ``alpha_components`` and
        ``latent_clusters`` are empty for real data.
    """
    unknown = sorted(set(market) - {"source", "preset", *_SOURCES})
    if unknown:
        raise ParameterError(f"market: unknown key(s) {unknown}; known: source, preset, {_SOURCES}")
    tables = _source_tables(market, seed)
    for name in OPTIONAL_TABLES:
        if tables.get(name) is None:
            logger.warning("%s: table absent; its feature family will be NaN with mask 0", name)
            tables[name] = empty_table(name)
    return (
        tables["daily_quotes"],
        tables["listed_info"],
        tables["topix"],
        tables["trades_spec"],
        tables["statements"],
        tables.get("oracle_alpha", pl.DataFrame(schema=_ORACLE_SCHEMA)),
        tables.get("alpha_components", pl.DataFrame(schema=_ORACLE_SCHEMA)),
        tables.get("latent_clusters", pl.DataFrame(schema=_CLUSTERS_SCHEMA)),
    )


def build_panel_node(daily_quotes: pl.DataFrame, listed_info: pl.DataFrame) -> pl.DataFrame:
    """The point-in-time adjusted panel (one row per traded Date, Code; sector as of that date)."""
    return build_panel(daily_quotes, listed_info)


def _present(table: pl.DataFrame) -> pl.DataFrame | None:
    return table if table.height else None


def build_features_node(
    *,
    panel: pl.DataFrame,
    raw_topix: pl.DataFrame,
    raw_trades_spec: pl.DataFrame,
    raw_statements: pl.DataFrame,
    horizons: list[int],
    features: dict[str, Any],
    universe: dict[str, Any],
) -> pl.DataFrame:
    """Features, validity masks, the investable-universe flag and targets per (Date, Code), on the
    market's session calendar, cross-sectionally normalised per Date."""
    cfg = FeaturesConfig.from_params(features)
    dates = panel.get_column("Date").unique().to_list()
    return build_features(
        panel,
        _present(raw_topix),
        _present(raw_trades_spec),
        _present(raw_statements),
        horizons=tuple(horizons),
        cs_method=cfg.cs_method,
        clip=cfg.clip,
        market_close=cfg.market_close,
        sessions=market_sessions(dates, cfg.calendar),
        universe=UniverseConfig.from_params(universe),
    )


def make_splits_node(
    panel: pl.DataFrame, splits: dict[str, Any], seq_len: int, horizons: list[int]
) -> dict:
    """Purged walk-forward folds over the trading dates of ``panel`` (JSON document)."""
    cfg = SplitsConfig.from_params(splits)
    return purged_walk_forward(
        panel.get_column("Date").unique().to_list(),
        n_splits=cfg.n_splits,
        seq_len=seq_len,
        max_horizon=max(horizons),
        embargo_days=cfg.embargo_days,
        val_days=cfg.val_days,
        test_days=cfg.test_days,
        mode=cfg.mode,
        train_days=cfg.train_days,
    )
