"""Tokyo Stock Exchange trading calendar (``exchange_calendars``' XTKS), as ``datetime.date`` lists."""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import exchange_calendars as xcals

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
    start, end = _as_date(start), _as_date(end)
    if end < start:
        return []
    cal = _xtks(start.year, end.year)
    first, last = cal.first_session.date(), cal.last_session.date()
    start, end = max(start, first), min(end, last)
    if end < start:
        return []
    return [ts.date() for ts in cal.sessions_in_range(start, end)]


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
