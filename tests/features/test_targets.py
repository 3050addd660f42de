import numpy as np
import polars as pl

from atft_kedro.features import build_features, registry
from tests.features.helpers import assert_close, series
from tests.features.tables import make_panel


def test_targets_by_hand_and_never_filled():
    panel = make_panel(n_codes=3, n_days=40, seed=9)
    df = build_features(panel, horizons=(1, 5, 20))
    code = panel["Code"][1]
    c = series(panel, code, "close")
    for h in (1, 5, 20):
        expected = np.full_like(c, np.nan)
        expected[:-h] = c[h:] / c[:-h] - 1
        got = series(df, code, f"target_{h}d")
        assert_close(got, expected)
        assert np.isnan(got[-h:]).all()
    assert df.schema["target_5d"] == pl.Float32


def test_no_feature_equals_a_target():
    panel = make_panel(n_codes=4, n_days=60, seed=9)
    df = build_features(panel, cs_method="none", horizons=(1, 5))
    for name in registry.feature_names("features"):
        for t in ("target_1d", "target_5d"):
            both = df.select(name, t).drop_nans()
            if both.height:
                assert not np.allclose(both[name], both[t]), (name, t)


def test_targets_span_sessions_not_rows():
    """A code missing sessions: a target is close(session s+h)/close(s) - 1 when the code has a row
    at s+h, else NaN; never the next row's close across the gap."""
    panel = make_panel(n_codes=3, n_days=40, seed=9)
    code = panel["Code"][1]
    dates = panel["Date"].unique().sort()
    gap = dates[10:13]  # sessions 10, 11, 12 missing for one code
    gapped = panel.filter(~((pl.col("Code") == code) & pl.col("Date").is_in(gap.implode())))
    df = build_features(gapped, horizons=(1, 5))
    full = panel.filter(pl.col("Code") == code).sort("Date")
    close = dict(zip(full["Date"], full["close"], strict=True))
    got = df.filter(pl.col("Code") == code).sort("Date")
    sessions = {d: i for i, d in enumerate(dates)}
    for row in got.iter_rows(named=True):
        s = sessions[row["Date"]]
        for h in (1, 5):
            ahead = dates[s + h] if s + h < len(dates) else None
            if ahead is None or ahead in gap:
                assert np.isnan(row[f"target_{h}d"]), (row["Date"], h)
            else:
                expected = close[ahead] / close[row["Date"]] - 1
                assert abs(row[f"target_{h}d"] - expected) < 1e-5 * max(1, abs(expected))
    # the session before the gap: no 1-day target (its next row is 4 sessions later)
    before = got.filter(pl.col("Date") == dates[9])
    assert np.isnan(before["target_1d"][0])
    # 5-day target from session 8 lands on session 13, which exists: defined across the gap
    assert not np.isnan(got.filter(pl.col("Date") == dates[8])["target_5d"][0])


def test_next_session_targets_by_hand():
    """target_next_{h}d = close(s+1+h)/close(s+1) - 1 and target_open_{h}d = open(s+1+h)/open(s+1)
    - 1: entry one session after the signal."""
    panel = make_panel(n_codes=3, n_days=40, seed=4)
    df = build_features(panel, horizons=(1, 5))
    code = panel["Code"][2]
    c, o = series(panel, code, "close"), series(panel, code, "open")
    for h in (1, 5):
        for name, px in ((f"target_next_{h}d", c), (f"target_open_{h}d", o)):
            expected = np.full_like(px, np.nan)
            expected[: -(h + 1)] = px[h + 1 :] / px[1:-h] - 1
            got = series(df, code, name)
            assert_close(got, expected)
            assert np.isnan(got[-(h + 1) :]).all()
    # the next-session target is the close-to-close target one session later
    assert_close(series(df, code, "target_next_1d")[:-1], series(df, code, "target_1d")[1:])


def test_next_session_targets_are_nan_when_the_entry_session_is_missing():
    panel = make_panel(n_codes=3, n_days=40, seed=4)
    code = panel["Code"][0]
    dates = panel["Date"].unique().sort()
    gapped = panel.filter(~((pl.col("Code") == code) & (pl.col("Date") == dates[10])))
    got = build_features(gapped, horizons=(1,)).filter(pl.col("Code") == code).sort("Date")
    row = got.filter(pl.col("Date") == dates[9])
    assert np.isnan(row["target_next_1d"][0]) and np.isnan(row["target_open_1d"][0])
    assert np.isnan(got.filter(pl.col("Date") == dates[8])["target_next_1d"][0])  # exits at 10
    assert not np.isnan(got.filter(pl.col("Date") == dates[7])["target_next_1d"][0])


def test_a_session_missing_for_every_code_counts_when_the_calendar_has_it():
    """With the exchange's calendar, a session absent from the file is still a session: no 1-day
    target spans it. Without it, the file's dates are the sessions."""
    panel = make_panel(n_codes=3, n_days=40, seed=4)
    dates = panel["Date"].unique().sort()
    holed = panel.filter(pl.col("Date") != dates[20])
    own = build_features(holed, horizons=(1,))
    full = build_features(holed, horizons=(1,), sessions=dates.to_list())
    before = pl.col("Date") == dates[19]
    assert not own.filter(before)["target_1d"].is_nan().any()
    assert full.filter(before)["target_1d"].is_nan().all()
    assert full.height == holed.height  # the missing session adds no rows
