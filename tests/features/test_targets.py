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
