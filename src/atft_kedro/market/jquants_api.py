"""Fetch J-Quants tables with the V2 API (``jquants-api-client`` 2.x ``ClientV2``) into a cache.

The cache (``data/01_raw/jquants/`` by default) holds one Parquet file per table in the V2 column
convention, exactly as the API returns it (dates as ``pl.Date``), plus ``_coverage.json`` with the
date range already fetched per table. A call fetches only the part of ``[start, end]`` outside that
range, appends it, and writes atomically (temporary file, then rename), so an interrupted run never
leaves a half-written table. The cache is then read back by ``jquants_files.read_jquants_dir``: the
API and file sources share one mapping and one validation.

Endpoints and how they are walked:

=============  ==================================  ======================================
table          ClientV2 method (V2 endpoint)       calls
=============  ==================================  ======================================
daily_quotes   get_eq_bars_daily                   one per TSE session (``date``)
               (/equities/bars/daily)
listed_info    get_eq_master (/equities/master)    one snapshot every ``listing_every``
                                                   sessions (default 1); only changes kept
topix          get_idx_bars_daily_topix            one per missing range (``from``/``to``)
trades_spec    get_eq_investor_types               one per missing range (``from``/``to``)
statements     get_fin_summary_cursor              one per TSE session (``date``)
               (/fins/summary)
=============  ==================================  ======================================

The API key comes from the argument, ``conf/local/credentials.yml`` (``jquants: {api_key: ...}``)
or the ``JQUANTS_API_KEY`` environment variable. It is held in :class:`ApiKey`, whose ``repr`` and
``str`` hide it, and it is scrubbed from every error message. ``jquants-api-client`` is an optional
extra, imported only when no client is injected.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from atft_kedro.market.calendar import tse_sessions
from atft_kedro.market.jquants_files import read_jquants_dir
from atft_kedro.market.schema import REQUIRED_TABLES, TABLES

logger = logging.getLogger(__name__)

API_KEY_ENV = "JQUANTS_API_KEY"
DEFAULT_CREDENTIALS = Path("conf/local/credentials.yml")
COVERAGE_FILE = "_coverage.json"
V2_DATE_COLUMNS = ("Date", "PubDate", "StDate", "EnDate", "DiscDate")
AUTH_FAILURES = {
    401: "rejected the API key",
    403: "refused access (invalid key, or your plan does not cover this data or period)",
}


class JQuantsAPIError(RuntimeError):
    """A J-Quants API request failed (one line; never contains the API key)."""


class JQuantsAuthError(JQuantsAPIError):
    """No API key, or the API rejected it."""


class ApiKey:
    """An API key that does not show itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__


def resolve_api_key(
    api_key: str | ApiKey | None = None,
    credentials: Mapping[str, Any] | None = None,
    credentials_path: str | Path = DEFAULT_CREDENTIALS,
) -> ApiKey:
    """The J-Quants API key: argument, then credentials (mapping or YAML file), then environment.

    Args:
        api_key: explicit key.
        credentials: Kedro-style credentials mapping with ``jquants: {api_key: ...}``.
        credentials_path: YAML file read when ``credentials`` is None.
    """
    if isinstance(api_key, ApiKey):
        return api_key
    if api_key:
        return ApiKey(api_key)
    if credentials is None and Path(credentials_path).is_file():
        credentials = yaml.safe_load(Path(credentials_path).read_text()) or {}
    value = ((credentials or {}).get("jquants") or {}).get("api_key") or os.environ.get(API_KEY_ENV)
    if not value:
        raise JQuantsAuthError(
            f"jquants_api: no API key; set jquants.api_key in {credentials_path} "
            f"or the {API_KEY_ENV} environment variable"
        )
    return ApiKey(str(value))


class RateLimiter:
    """Keeps at least ``min_interval_s`` seconds between the starts of consecutive requests."""

    def __init__(
        self,
        min_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval_s = min_interval_s
        self._clock, self._sleep = clock, sleep
        self._last: float | None = None

    def wait(self) -> None:
        if self._last is not None:
            remaining = self.min_interval_s - (self._clock() - self._last)
            if remaining > 0:
                self._sleep(remaining)
        self._last = self._clock()


# ----------------------------------------------------------------------------------------------
# Endpoints
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    table: str
    method: str
    walk: str  # "session": one call per TSE session; "range": one call per missing range
    date_param: str  # ClientV2 keyword naming the date of a per-session call
    date_column: str  # V2 column that dates a row
    key: tuple[str, ...]  # V2 columns identifying a row (duplicates keep the latest fetch)


ENDPOINTS: dict[str, Endpoint] = {
    "daily_quotes": Endpoint(
        "daily_quotes", "get_eq_bars_daily", "session", "date_yyyymmdd", "Date", ("Date", "Code")
    ),
    "listed_info": Endpoint(
        "listed_info", "get_eq_master", "session", "date", "Date", ("Date", "Code")
    ),
    "topix": Endpoint("topix", "get_idx_bars_daily_topix", "range", "", "Date", ("Date",)),
    "trades_spec": Endpoint(
        "trades_spec",
        "get_eq_investor_types",
        "range",
        "",
        "PubDate",
        ("PubDate", "StDate", "Section"),
    ),
    "statements": Endpoint(
        "statements", "get_fin_summary_cursor", "session", "date_yyyymmdd", "DiscDate", ()
    ),
}


def _requests(endpoint: Endpoint, start: date, end: date, every: int = 1) -> list[dict[str, str]]:
    """The keyword arguments of each ClientV2 call covering [start, end] (every n-th session)."""
    if endpoint.walk == "range":
        return [{"from_yyyymmdd": start.isoformat(), "to_yyyymmdd": end.isoformat()}]
    return [{endpoint.date_param: d.isoformat()} for d in tse_sessions(start, end)[::every]]


def _as_polars(result: Any) -> pl.DataFrame:
    """A ClientV2 result (pandas frame, or a (frame, cursor) tuple) as polars, dates as Date."""
    if isinstance(result, tuple):
        result = result[0]
    df = result if isinstance(result, pl.DataFrame) else pl.from_pandas(result)
    return df.with_columns(
        pl.col(c).dt.date() for c in V2_DATE_COLUMNS if isinstance(df.schema.get(c), pl.Datetime)
    )


def _call(client: Any, endpoint: Endpoint, kwargs: dict[str, str], key: ApiKey) -> pl.DataFrame:
    try:
        return _as_polars(getattr(client, endpoint.method)(**kwargs))
    except Exception as err:  # noqa: BLE001 - any client failure becomes one clear line
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in AUTH_FAILURES:
            raise JQuantsAuthError(
                f"jquants_api: J-Quants {AUTH_FAILURES[status]} (HTTP {status}) while fetching {endpoint.table}; "
                f"check jquants.api_key in {DEFAULT_CREDENTIALS} or {API_KEY_ENV}"
            ) from None
        detail = key.scrub(str(err)).splitlines()[0] if str(err) else type(err).__name__
        raise JQuantsAPIError(
            f"jquants_api: {endpoint.table} request {kwargs} failed: {detail}"
        ) from None


# ----------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------
def _read_coverage(cache_dir: Path) -> dict[str, tuple[date, date]]:
    path = cache_dir / COVERAGE_FILE
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {t: (date.fromisoformat(a), date.fromisoformat(b)) for t, (a, b) in raw.items()}


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_coverage(cache_dir: Path, coverage: dict[str, tuple[date, date]]) -> None:
    text = json.dumps({t: [a.isoformat(), b.isoformat()] for t, (a, b) in sorted(coverage.items())})
    _write_atomic(cache_dir / COVERAGE_FILE, lambda p: p.write_text(text))


def missing_ranges(
    start: date, end: date, covered: tuple[date, date] | None
) -> list[tuple[date, date]]:
    """The date ranges to fetch so that the cache covers [start, end] in one contiguous block.

    At most one range before the covered block and one after it; a request that does not touch
    the block also fills the gap between them, so coverage stays a single interval.
    """
    if covered is None:
        return [(start, end)]
    lo, hi = covered
    gaps = []
    if start < lo:
        gaps.append((start, lo - timedelta(days=1)))
    if end > hi:
        gaps.append((hi + timedelta(days=1), end))
    return gaps


def _only_changes(listing: pl.DataFrame) -> pl.DataFrame:
    """Keep a code's snapshot row only when something differs from its previous snapshot."""
    attributes = [c for c in listing.columns if c != "Date"]
    listing = listing.sort("Code", "Date")
    changed = pl.col("Code").is_first_distinct() | pl.any_horizontal(
        pl.col(c).ne_missing(pl.col(c).shift(1).over("Code")) for c in attributes if c != "Code"
    )
    return listing.filter(changed).sort("Date", "Code")


def _append(cache: Path, endpoint: Endpoint, new: list[pl.DataFrame]) -> int:
    """Merge new rows into the table's Parquet file atomically; returns the number of new rows."""
    frames = [f for f in new if f.height]
    if not frames:
        return 0
    fresh = pl.concat(frames, how="diagonal_relaxed")
    combined = (
        pl.concat([pl.read_parquet(cache), fresh], how="diagonal_relaxed")
        if cache.is_file()
        else fresh
    )
    combined = (
        combined.unique(subset=list(endpoint.key), keep="last", maintain_order=True)
        if endpoint.key
        else combined.unique(maintain_order=True)
    )
    if endpoint.table == "listed_info":
        combined = _only_changes(combined)
    combined = combined.sort(
        endpoint.date_column, *[k for k in endpoint.key if k != endpoint.date_column]
    )
    _write_atomic(cache, combined.write_parquet)
    return fresh.height


def _default_client(key: ApiKey) -> Any:
    try:
        import jquantsapi
    except ImportError:
        raise JQuantsAPIError(
            "jquants_api: the optional package jquants-api-client is not installed; "
            "pip install 'jquants-api-client>=2.8'"
        ) from None
    return jquantsapi.ClientV2(api_key=key.reveal())


def _check_request(
    start: date | str, end: date | str, tables: tuple[str, ...]
) -> tuple[date, date]:
    """(start, end) as dates; a ValueError when end precedes start or a table is unknown."""
    start, end = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if end < start:
        raise ValueError(f"jquants_api: end {end} is before start {start}")
    unknown = sorted(set(tables) - set(ENDPOINTS))
    if unknown:
        raise ValueError(
            f"jquants_api: unknown tables {unknown}; expected some of {list(ENDPOINTS)}"
        )
    return start, end


def _fetch_ranges(
    client: Any,
    key: ApiKey,
    limiter: RateLimiter,
    endpoint: Endpoint,
    gaps: list[tuple[date, date]],
    every: int,
) -> list[pl.DataFrame]:
    """One frame per request covering ``gaps`` (``every``-th session for snapshots), each request
    after the limiter's wait."""
    new = []
    for lo, hi in gaps:
        for kwargs in _requests(endpoint, lo, hi, every):
            limiter.wait()
            frame = _call(client, endpoint, kwargs, key)
            new.append(frame)
    return new


def _extend_coverage(
    cache_dir: Path, coverage: dict[str, tuple[date, date]], table: str, start: date, end: date
) -> None:
    """Widen ``table``'s covered range in ``coverage`` to include [start, end] and write it."""
    covered = coverage.get(table, (start, end))
    coverage[table] = (min(start, covered[0]), max(end, covered[1]))
    _write_coverage(cache_dir, coverage)


def fetch_jquants(
    cache_dir: str | Path,
    start: date | str,
    end: date | str,
    *,
    api_key: str | ApiKey | None = None,
    tables: tuple[str, ...] = tuple(ENDPOINTS),
    client: Any = None,
    min_interval_s: float = 1.0,
    listing_every: int = 1,
    credentials: Mapping[str, Any] | None = None,
    rate_limiter: RateLimiter | None = None,
) -> dict[str, pl.DataFrame]:
    """Fetch what the cache lacks of [start, end], then return the canonical validated tables.

    Args:
        cache_dir: folder of the V2-convention Parquet cache (``data/01_raw/jquants``).
        start, end: inclusive calendar dates (``date`` or ISO string).
        api_key: the key; None resolves it (credentials, then ``JQUANTS_API_KEY``).
        tables: which tables to fetch (default all five).
        client: an object with ClientV2's methods; None builds a real ``jquantsapi.ClientV2``.
        min_interval_s: minimum seconds between requests (J-Quants rate-limits per plan).
        listing_every: sessions between listed_info snapshots; 1 sees every listing, sector and
            market change on its date, n > 1 sees them up to n − 1 sessions late (never early)
            and drops a new code's quotes until its first snapshot.
        credentials: Kedro credentials mapping, used when ``api_key`` is None.
        rate_limiter: injectable limiter (tests); default ``RateLimiter(min_interval_s)``.

    Returns:
        {table: canonical validated frame} read back from the whole cache.
    """
    start, end = _check_request(start, end, tables)
    key = resolve_api_key(api_key, credentials)
    client = client if client is not None else _default_client(key)
    limiter = rate_limiter or RateLimiter(min_interval_s)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    coverage = _read_coverage(cache_dir)

    for table in tables:
        endpoint = ENDPOINTS[table]
        gaps = missing_ranges(start, end, coverage.get(table))
        every = listing_every if table == "listed_info" else 1
        new = _fetch_ranges(client, key, limiter, endpoint, gaps, every)
        n_new = _append(cache_dir / f"{table}.parquet", endpoint, new)
        if gaps:
            _extend_coverage(cache_dir, coverage, table, start, end)
        logger.info(
            "jquants_api: %s: %d new rows from %d range(s) %s",
            table,
            n_new,
            len(gaps),
            [(a.isoformat(), b.isoformat()) for a, b in gaps],
        )

    required = tuple(t for t in REQUIRED_TABLES if t in tables)
    fetched = read_jquants_dir(cache_dir, required=required)
    return {t: df for t, df in fetched.items() if t in tables and t in TABLES}
