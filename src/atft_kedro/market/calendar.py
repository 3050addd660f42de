"""Tokyo Stock Exchange trading calendar (``exchange_calendars``' XTKS), as ``datetime.date`` lists,
and the choice of a dataset's session calendar."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Sequence
from functools import lru_cache

import exchange_calendars as xcals

from atft_kedro.errors import ParameterError

log = logging.getLogger(__name__)

CALENDAR_NAME = "XTKS"


@lru_cache(maxsize=8)
def _xtks(first_year: int, last_year: int) -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():  # pandas deprecation noise from inside exchange_calendars
        warnings.filterwarnings("ignore", message="Series.values returning")
        return xcals.get_calendar(
            CALENDAR_NAME, start=dt.date(first_year, 1, 1), end=dt.date(last_year, 12, 31)
        )


def _as_date(d: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(d) if isinstance(d, str) else d


def tse_sessions(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """TSE trading sessions in ``[start, end]`` (inclusive), ascending."""
    lo, hi = _as_date(start), _as_date(end)
    if hi < lo:
        return []
    cal = _xtks(lo.year, hi.year)
    first, last = cal.first_session.date(), cal.last_session.date()
    lo, hi = max(lo, first), min(hi, last)
    if hi < lo:
        return []
    return [ts.date() for ts in cal.sessions_in_range(lo, hi)]


def tse_sessions_from(start: dt.date | str, n: int) -> list[dt.date]:
    """The first ``n`` TSE sessions on or after ``start``."""
    start = _as_date(start)
    years = n // 240 + 2  # ~245 sessions a year; one spare year
    sessions = tse_sessions(start, dt.date(start.year + years, 12, 31))
    if len(sessions) < n:
        raise ValueError(f"calendar {CALENDAR_NAME}: only {len(sessions)} sessions after {start}")
    return sessions[:n]


def tse_sessions_before(end: dt.date | str, n: int) -> list[dt.date]:
    """The last ``n`` TSE sessions strictly before ``end``."""
    end = _as_date(end)
    years = n // 240 + 2
    sessions = tse_sessions(dt.date(end.year - years, 1, 1), end - dt.timedelta(days=1))
    return sessions[-n:] if n else []


CALENDAR_RULES = ("auto", "tse", "data")
#: share of the data's dates that must be TSE sessions for ``auto`` to choose the TSE calendar
TSE_SHARE = 0.99


def market_sessions(dates: Sequence[dt.date], rule: str = "auto") -> list[dt.date] | None:
    """The session calendar for data with these ``dates``: the TSE's over their span (``tse``),
    None for the data's own dates (``data``), or ``auto``: the TSE's when at least 99% of the
    dates are TSE sessions (J-Quants data), else the data's own (a file from another market)."""
    if rule not in CALENDAR_RULES:
        raise ParameterError(f"features.calendar: {rule!r}, want one of {list(CALENDAR_RULES)}")
    if rule == "data" or not len(dates):
        return None
    unique = sorted(set(dates))
    tse = tse_sessions(unique[0], unique[-1])
    if rule == "tse":
        return tse
    share = len(set(unique) & set(tse)) / len(unique)
    chosen = "tse" if share >= TSE_SHARE else "data"
    log.info("calendar: %.1f%% of the data's dates are TSE sessions -> %s", 100 * share, chosen)
    return tse if chosen == "tse" else None
