"""TSE calendar from exchange_calendars (XTKS)."""

import datetime as dt

import exchange_calendars as xcals
import pytest

from atft_kedro.market.calendar import tse_sessions, tse_sessions_before, tse_sessions_from


@pytest.mark.filterwarnings("ignore:Series.values returning")
def test_sessions_equal_the_xtks_calendar():
    start, end = dt.date(2022, 12, 1), dt.date(2024, 2, 1)
    expected = [
        ts.date() for ts in xcals.get_calendar("XTKS").sessions_in_range("2022-12-01", "2024-02-01")
    ]
    assert tse_sessions(start, end) == expected


def test_known_holidays_and_weekends_are_not_sessions():
    sessions = set(tse_sessions("2023-12-25", "2024-01-10"))
    for holiday in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-08"):
        assert dt.date.fromisoformat(holiday) not in sessions  # New Year closure, Coming-of-Age Day
    assert dt.date(2023, 12, 29) in sessions  # the year's last session (Dai-nokai)
    assert dt.date(2024, 1, 4) in sessions
    assert all(d.weekday() < 5 for d in sessions)


def test_sessions_from_and_before():
    after = tse_sessions_from("2024-01-01", 3)
    assert after == [dt.date(2024, 1, 4), dt.date(2024, 1, 5), dt.date(2024, 1, 9)]
    before = tse_sessions_before(dt.date(2024, 1, 4), 2)
    assert before == [dt.date(2023, 12, 28), dt.date(2023, 12, 29)]
    assert tse_sessions("2024-01-10", "2024-01-01") == []
