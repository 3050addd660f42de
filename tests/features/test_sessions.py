"""Features run over market sessions: a code's missing session is a session without a trade."""

import numpy as np
import polars as pl

from atft_kedro.features import build_features
from atft_kedro.features.build import panel_features
from tests.features.helpers import assert_close, series
from tests.features.tables import make_panel

GAP = slice(10, 13)  # sessions 10, 11, 12


def _gapped(seed: int = 9):
    panel = make_panel(n_codes=3, n_days=60, seed=seed)
    code = panel["Code"][1]
    dates = panel["Date"].unique().sort()
    gap = dates[GAP]
    gapped = panel.filter(~((pl.col("Code") == code) & pl.col("Date").is_in(gap.implode())))
    return panel, gapped, code, dates


def test_lags_count_sessions_not_rows():
    """ret_{k}d at session s is close(s) / close(s-k) - 1, with the close carried forward over the
    code's missing sessions (as over a J-Quants no-trade row)."""
    panel, gapped, code, dates = _gapped()
    got = panel_features(gapped, ["returns"]).filter(pl.col("Code") == code).sort("Date")
    close = dict(zip(*series_pair(panel, code), strict=True))
    carried = {
        d: close[dates[GAP.start - 1]] if d in dates[GAP].to_list() else close[d] for d in dates
    }
    rows = {d: i for i, d in enumerate(got["Date"])}
    for s in (13, 14, 15, 20):
        for k in (1, 5):
            expected = carried[dates[s]] / carried[dates[s - k]] - 1
            value = got["ret_" + str(k) + "d"][rows[dates[s]]]
            assert abs(value - expected) < 1e-5 * max(1.0, abs(expected)), (s, k)
    assert not set(dates[GAP].to_list()) & set(got["Date"].to_list()), "fillers are dropped"


def series_pair(panel: pl.DataFrame, code: str):
    one = panel.filter(pl.col("Code") == code).sort("Date")
    return one["Date"].to_list(), one["close"].to_list()


def test_rows_of_other_codes_do_not_move_and_windows_shift_by_the_gap():
    """Removing one code's sessions changes nothing for the other codes, and that code's 20-session
    windows after the gap differ from the row-counted ones."""
    panel, gapped, code, dates = _gapped()
    full = build_features(panel, cs_method="none", horizons=(1,))
    cut = build_features(gapped, cs_method="none", horizons=(1,))
    other = panel["Code"][0]
    for name in ("ret_20d", "vol_20d", "target_1d"):
        assert_close(series(cut, other, name), series(full, other, name))
    # for the gapped code, a row 20 sessions after the gap start sees the same close 20 sessions ago
    after = cut.filter((pl.col("Code") == code) & (pl.col("Date") == dates[40]))
    before = full.filter((pl.col("Code") == code) & (pl.col("Date") == dates[40]))
    assert np.isclose(after["ret_20d"][0], before["ret_20d"][0], rtol=1e-5)


def test_a_code_without_gaps_is_unchanged_by_the_session_grid():
    panel = make_panel(n_codes=3, n_days=60, seed=2)
    assert build_features(panel, horizons=(1,)).equals(
        build_features(panel, horizons=(1,), sessions=panel["Date"].unique().to_list())
    )
