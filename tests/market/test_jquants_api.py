"""The J-Quants API source, offline: recorded V2 response bodies served page by page.

``RecordedV2`` plays the API: it filters the recorded rows of an endpoint like the server does
(``date`` = one day, ``from``/``to`` = a range, ``/equities/master`` as of a date) and paginates.
``FakeClientV2`` mirrors the public methods of ``jquantsapi.ClientV2`` on top of it; a second set
of tests runs the real ``ClientV2`` with only its HTTP ``_get`` replaced. No test touches the
network.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from atft_kedro.market.jquants_api import (
    ApiKey,
    JQuantsAPIError,
    JQuantsAuthError,
    RateLimiter,
    fetch_jquants,
    missing_ranges,
    resolve_api_key,
)
from atft_kedro.market.jquants_files import read_jquants_dir
from atft_kedro.market.panel import build_panel

FIXTURES = Path(__file__).parents[1] / "fixtures" / "jquants"
KEY = "test-key-3f9a1c"
TABLES = ("daily_quotes", "listed_info", "topix", "trades_spec", "statements")
START, MID, END = "2024-01-04", "2024-01-10", "2024-01-18"


class HTTPStatusError(Exception):
    """Shaped like requests.HTTPError: a message and a response with a status code."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.response = type("Response", (), {"status_code": status_code})()


class RecordedV2:
    """Recorded V2 response bodies, filtered and paginated like the API."""

    def __init__(self, page_size: int = 4, valid_key: str = KEY) -> None:
        self.endpoints = {}
        for table in TABLES:
            body = json.loads((FIXTURES / "v2" / f"{table}.json").read_text())
            self.endpoints[body["endpoint"]] = body
        self.page_size, self.valid_key = page_size, valid_key
        self.calls: list[tuple[str, dict]] = []

    def rows(self, path: str, params: dict) -> list[dict]:
        body = self.endpoints[path]
        field, data = body["date_field"], body["data"]
        day = params.get("date")
        if day and path == "/equities/master":  # the listing as of that day
            latest = {}
            for row in sorted(data, key=lambda r: r["Date"]):
                if row["Date"] <= day:
                    latest[row["Code"]] = row | {"Date": day}
            return [latest[c] for c in sorted(latest)]
        if day:
            return [r for r in data if r[field] == day]
        lo, hi = params.get("from", "0000-00-00"), params.get("to", "9999-99-99")
        return [r for r in data if lo <= r[field] <= hi]

    def get(self, path: str, params: dict, api_key: str) -> dict:
        """One page of the response body."""
        if api_key != self.valid_key:
            raise HTTPStatusError(f"401 Client Error: Unauthorized (x-api-key={api_key})", 401)
        params = dict(params)
        offset = int(params.pop("pagination_key", 0) or 0)
        if offset == 0:
            self.calls.append((path, params))
        rows = self.rows(path, params)
        body = {"data": rows[offset : offset + self.page_size]}
        if offset + self.page_size < len(rows):
            body["pagination_key"] = str(offset + self.page_size)
        return body

    def dates_requested(self, path: str) -> list[str]:
        return [
            p.get("date") or f"{p.get('from')}..{p.get('to')}" for q, p in self.calls if q == path
        ]


class FakeClientV2:
    """The ClientV2 methods fetch_jquants uses, returning pandas frames like the real client."""

    def __init__(self, server: RecordedV2, api_key: str) -> None:
        self.server, self._api_key = server, api_key

    def _frame(self, path: str, params: dict, date_columns: tuple[str, ...]) -> pd.DataFrame:
        params = {k: v for k, v in params.items() if v}
        rows, page = [], self.server.get(path, params, self._api_key)
        rows += page["data"]
        while "pagination_key" in page:
            page = self.server.get(
                path, params | {"pagination_key": page["pagination_key"]}, self._api_key
            )
            rows += page["data"]
        df = pd.DataFrame.from_records(rows)
        for col in date_columns:
            if col in df.columns:
                df[col] = pd.to_datetime(df[col])
        return df

    def get_eq_bars_daily(self, code="", from_yyyymmdd="", to_yyyymmdd="", date_yyyymmdd=""):
        return self._frame("/equities/bars/daily", {"code": code, "date": date_yyyymmdd}, ("Date",))

    def get_eq_master(self, code="", date=""):
        return self._frame("/equities/master", {"code": code, "date": date}, ("Date",))

    def get_idx_bars_daily_topix(self, from_yyyymmdd="", to_yyyymmdd=""):
        params = {"from": from_yyyymmdd, "to": to_yyyymmdd}
        return self._frame("/indices/bars/daily/topix", params, ("Date",))

    def get_eq_investor_types(self, section="", from_yyyymmdd="", to_yyyymmdd=""):
        params = {"section": section, "from": from_yyyymmdd, "to": to_yyyymmdd}
        return self._frame("/equities/investor-types", params, ("PubDate", "StDate", "EnDate"))

    def get_fin_summary_cursor(self, code="", date_yyyymmdd="", cursor=""):
        return self._frame(
            "/fins/summary", {"code": code, "date": date_yyyymmdd}, ("DiscDate",)
        ), None


class NoWait(RateLimiter):
    def __init__(self) -> None:
        super().__init__(0.0)


@pytest.fixture(autouse=True)
def no_ambient_key(monkeypatch):
    monkeypatch.delenv("JQUANTS_API_KEY", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no conf/local/credentials.yml here


def fetch(cache: Path, server: RecordedV2, start=START, end=END, key=KEY, **kwargs):
    client = FakeClientV2(server, key)
    return fetch_jquants(
        cache, start, end, api_key=key, client=client, rate_limiter=NoWait(), **kwargs
    )


# ----------------------------------------------------------------------------------- fetching
def test_fetch_gives_the_same_tables_and_panel_as_the_v1_files(tmp_path):
    fetched = fetch(tmp_path / "jquants", RecordedV2())
    files = read_jquants_dir(FIXTURES / "v1")
    for name in TABLES:
        assert fetched[name].equals(files[name]), name
    assert build_panel(fetched["daily_quotes"], fetched["listed_info"]).equals(
        build_panel(files["daily_quotes"], files["listed_info"])
    )


def test_cache_is_v2_parquet_and_listed_info_keeps_only_changes(tmp_path):
    fetch(tmp_path, RecordedV2())
    bars = pl.read_parquet(tmp_path / "daily_quotes.parquet")
    assert {"O", "AdjC", "AdjFactor"} <= set(bars.columns) and bars.schema["Date"] == pl.Date
    master = pl.read_parquet(tmp_path / "listed_info.parquet")
    # 10 daily snapshots compress to the 4 rows where something changed
    assert master.select("Date", "Code", "S33").rows() == [
        (dt.date(2024, 1, 4), "72030", "3700"),
        (dt.date(2024, 1, 4), "86970", "7100"),
        (dt.date(2024, 1, 12), "130A0", "5250"),
        (dt.date(2024, 1, 15), "86970", "7200"),
    ]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_one_request_per_tse_session_and_pages_followed(tmp_path):
    server = RecordedV2(page_size=1)
    out = fetch(tmp_path, server, tables=("daily_quotes", "listed_info"))
    days = server.dates_requested("/equities/bars/daily")
    assert days[0] == "2024-01-04" and "2024-01-08" not in days  # Coming of Age Day: no session
    assert len(days) == 10
    assert out["daily_quotes"].height == 25


def test_incremental_fetch_requests_only_new_dates(tmp_path):
    first = RecordedV2()
    fetch(tmp_path, first, end=MID)
    assert max(first.dates_requested("/equities/bars/daily")) == MID

    second = RecordedV2()
    out = fetch(tmp_path, second, end=END)
    bars_days = second.dates_requested("/equities/bars/daily")
    assert bars_days and min(bars_days) > MID
    assert second.dates_requested("/indices/bars/daily/topix") == ["2024-01-11..2024-01-18"]
    assert out["daily_quotes"].equals(read_jquants_dir(FIXTURES / "v1")["daily_quotes"])

    third = RecordedV2()
    fetch(tmp_path, third, end=END)
    assert third.calls == []  # everything cached
    coverage = json.loads((tmp_path / "_coverage.json").read_text())
    assert coverage["daily_quotes"] == [START, END]


def test_missing_ranges_keep_one_contiguous_block():
    d = dt.date.fromisoformat
    assert missing_ranges(d("2024-01-04"), d("2024-01-18"), None) == [
        (d("2024-01-04"), d("2024-01-18"))
    ]
    covered = (d("2024-01-10"), d("2024-01-12"))
    assert missing_ranges(d("2024-01-04"), d("2024-01-18"), covered) == [
        (d("2024-01-04"), d("2024-01-09")),
        (d("2024-01-13"), d("2024-01-18")),
    ]
    assert missing_ranges(d("2024-01-11"), d("2024-01-12"), covered) == []
    # a later request beyond a gap also fills the gap
    assert missing_ranges(d("2024-02-01"), d("2024-02-02"), covered) == [
        (d("2024-01-13"), d("2024-02-02"))
    ]


def test_rate_limiter_spaces_requests():
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(1.0, clock=lambda: now[0], sleep=sleep)
    limiter.wait()
    now[0] += 0.25
    limiter.wait()
    now[0] += 3.0
    limiter.wait()
    assert slept == [pytest.approx(0.75)]


# ------------------------------------------------------------------------------------ the key
def test_bad_key_is_one_line_without_the_key(tmp_path, caplog):
    bad = "wrong-key-77e1"
    with caplog.at_level(logging.DEBUG), pytest.raises(JQuantsAuthError) as err:
        fetch(tmp_path, RecordedV2(), key=bad)
    message = str(err.value)
    assert message.startswith(
        "jquants_api: J-Quants rejected the API key (HTTP 401) while fetching"
    )
    assert "\n" not in message
    assert bad not in message and bad not in repr(err.value) and bad not in caplog.text
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_missing_key_says_where_to_put_it(tmp_path):
    with pytest.raises(JQuantsAuthError) as err:
        fetch_jquants(tmp_path, START, END, client=FakeClientV2(RecordedV2(), ""))
    assert str(err.value) == (
        "jquants_api: no API key; set jquants.api_key in conf/local/credentials.yml "
        "or the JQUANTS_API_KEY environment variable"
    )


def test_key_from_credentials_file_then_environment(tmp_path, monkeypatch):
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("jquants:\n  api_key: from-file\n")
    assert resolve_api_key(credentials_path=credentials).reveal() == "from-file"
    assert (
        resolve_api_key(credentials={"jquants": {"api_key": "from-kedro"}}).reveal() == "from-kedro"
    )
    monkeypatch.setenv("JQUANTS_API_KEY", "from-env")
    assert resolve_api_key(credentials_path=tmp_path / "absent.yml").reveal() == "from-env"
    key = resolve_api_key("explicit")
    assert "explicit" not in repr(key) and "explicit" not in str(key) and "explicit" not in f"{key}"
    assert ApiKey("s3cret").scrub("url?key=s3cret") == "url?key=***"


# ------------------------------------------------------------------- the real ClientV2, offline
@pytest.fixture
def real_client_offline(monkeypatch):
    """jquantsapi.ClientV2 with only its HTTP GET replaced by the recorded server."""
    jquantsapi = pytest.importorskip("jquantsapi")
    requests = pytest.importorskip("requests")
    server = RecordedV2(page_size=3)

    def _get(self, url, params=None):
        path = url.removeprefix(self.JQUANTS_API_BASE)
        response = requests.Response()
        response.url = url
        try:
            body = server.get(path, params or {}, self._api_key)
            response.status_code = 200
        except HTTPStatusError as err:
            body = {"message": "The incoming token is invalid or expired."}
            response.status_code = err.response.status_code
        response._content = json.dumps(body).encode()
        self._raise_for_status(response)
        return response

    monkeypatch.setattr(jquantsapi.ClientV2, "_get", _get)
    return server


def test_real_client_parses_the_recorded_responses(tmp_path, real_client_offline):
    fetched = fetch_jquants(tmp_path, START, END, api_key=KEY, rate_limiter=NoWait())
    files = read_jquants_dir(FIXTURES / "v1")
    for name in TABLES:
        assert fetched[name].equals(files[name]), name
    assert len(real_client_offline.dates_requested("/equities/bars/daily")) == 10


def test_real_client_bad_key(tmp_path, real_client_offline):
    bad = "wrong-key-0c2d"
    with pytest.raises(JQuantsAuthError, match=r"rejected the API key \(HTTP 401\)") as err:
        fetch_jquants(tmp_path, START, END, api_key=bad, rate_limiter=NoWait())
    assert bad not in str(err.value)


class FailingClient(FakeClientV2):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message

    def get_eq_bars_daily(self, **kwargs):
        raise HTTPStatusError(self.message, self.status)


def test_forbidden_and_server_errors_are_one_line_and_scrubbed(tmp_path):
    with pytest.raises(JQuantsAuthError, match=r"refused access .*\(HTTP 403\)"):
        fetch_jquants(
            tmp_path,
            START,
            END,
            api_key=KEY,
            client=FailingClient(403, "no"),
            rate_limiter=NoWait(),
        )
    with pytest.raises(JQuantsAPIError) as err:
        client = FailingClient(500, f"500 Server Error for key {KEY}\ntraceback...")
        fetch_jquants(tmp_path, START, END, api_key=KEY, client=client, rate_limiter=NoWait())
    assert str(err.value) == (
        "jquants_api: daily_quotes request {'date_yyyymmdd': '2024-01-04'} failed: "
        "500 Server Error for key ***"
    )


def test_the_client_package_is_imported_only_when_needed(tmp_path, monkeypatch):
    import subprocess
    import sys

    code = "import sys, atft_kedro.market.jquants_api; print('jquantsapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "jquantsapi", None)  # as if the extra were not installed
    with pytest.raises(JQuantsAPIError, match=r"pip install 'jquants-api-client>=2.8'"):
        fetch_jquants(tmp_path, START, END, api_key=KEY, rate_limiter=NoWait())
