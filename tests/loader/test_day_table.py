import numpy as np
import pyarrow as pa
import pytest

from atft_kedro.loader.day_table import arrow_code_keys, code_keys


def test_arrow_code_keys_match_the_string_keys_across_chunks():
    codes = ["13010", "130A0", "72030", "13010", "99840", "130A0"]
    column = pa.chunked_array([codes[:2], codes[2:5], codes[5:]])
    strings, keys = arrow_code_keys(column)
    assert strings.tolist() == codes
    np.testing.assert_array_equal(keys, code_keys(np.array(codes)))
    assert np.all(np.diff(code_keys(np.array(sorted(codes)))) >= 0)  # key order = string order


def test_arrow_code_keys_refuse_nulls():
    with pytest.raises(ValueError, match="must not be null"):
        arrow_code_keys(pa.array(["13010", None]))


def test_target_prefixes_match_the_feature_targets():
    """The loader keeps its own copy of the view → column prefix map (so it needs no polars)."""
    from atft_kedro.features.labels import VIEWS
    from atft_kedro.loader.day_table import TARGET_PREFIX

    assert TARGET_PREFIX == {view: prefix for view, (prefix, _, _) in VIEWS.items()}
