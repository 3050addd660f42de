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
