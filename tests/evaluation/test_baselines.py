from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from atft_kedro.evaluation.baselines import (
    baseline_inputs,
    fit_predict_baseline,
    fit_predict_blocks,
)
from atft_kedro.evaluation.metrics import daily_ic
from atft_kedro.features import registry

N_DAYS, N_STOCKS = 60, 40
DAYS = [date(2023, 1, 2) + timedelta(days=d) for d in range(N_DAYS)]
CODES = [f"{1300 + i}0" for i in range(N_STOCKS)]
FEATURES = ["ret_20d", "ret_5d", "noise", "is_returns_valid"]
SPLITS = {
    "n_splits": 1,
    "folds": [
        {
            "fold": 0,
            "train": [str(DAYS[0]), str(DAYS[29])],
            "val": [str(DAYS[32]), str(DAYS[37])],
            "test": [str(DAYS[40]), str(DAYS[59])],
        }
    ],
}
HGB_FAST = {"max_iter": 30, "min_samples_leaf": 20}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """OpenMP spin-waiting on a busy 2-core machine makes tiny HGB fits take seconds."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    """Toy panel with planted momentum: target_1d = 0.05·ret_20d + noise."""
    rng = np.random.default_rng(0)
    mom = rng.standard_normal((N_DAYS, N_STOCKS)) * 0.1
    alpha = 0.05 * mom
    target = alpha + rng.standard_normal((N_DAYS, N_STOCKS)) * 0.01
    return pl.DataFrame(
        {
            "Date": [d for d in DAYS for _ in CODES],
            "Code": CODES * N_DAYS,
            "ret_20d": mom.ravel().astype(np.float32),
            "ret_5d": (rng.standard_normal(N_DAYS * N_STOCKS) * 0.05).astype(np.float32),
            "noise": rng.standard_normal(N_DAYS * N_STOCKS).astype(np.float32),
            "is_returns_valid": np.ones(N_DAYS * N_STOCKS, dtype=np.int8),
            "target_1d": target.ravel().astype(np.float32),
            "alpha_1d": alpha.ravel(),
        }
    )


def _predict(name: str, features: pl.DataFrame, **kw) -> pl.DataFrame:
    oracle = features.select("Date", "Code", "alpha_1d")
    return fit_predict_baseline(
        name,
        features.drop("alpha_1d"),
        SPLITS,
        0,
        [1],
        feature_cols=FEATURES,
        seed=3,
        oracle_alpha=oracle,
        hgb_params=HGB_FAST,
        **kw,
    )


@pytest.mark.parametrize("name", ["ridge", "peer_ridge", "structural", "hgb", "momentum", "oracle"])
def test_baselines_write_the_contract_and_find_the_planted_signal(features, name):
    preds = _predict(name, features)
    assert preds.columns == ["Date", "Code", "model", "fold", "phase", "pred_1d", "target_1d"]
    assert preds["model"].unique().to_list() == [name]
    assert preds["phase"].null_count() == preds.height and preds["fold"].unique().to_list() == [0]
    assert preds["Date"].min() == DAYS[40] and preds["Date"].max() == DAYS[59]
    assert preds.height == 20 * N_STOCKS
    rank_ic = daily_ic(preds, "pred_1d", "target_1d").table["rank_ic"].mean()
    assert rank_ic > 0.3


def test_reversal_is_minus_the_5_day_return(features):
    preds = _predict("reversal", features)
    test = features.filter(pl.col("Date") >= DAYS[40]).sort("Date", "Code")
    np.testing.assert_allclose(preds["pred_1d"], -test["ret_5d"].cast(pl.Float64))


def test_learned_baselines_never_see_test_targets(features):
    leaked = features.with_columns(
        target_1d=pl.when(pl.col("Date") >= DAYS[30])
        .then(pl.col("target_1d") * -5.0 + 1.0)
        .otherwise("target_1d")
    )
    for name in ("ridge", "hgb"):
        base, moved = _predict(name, features), _predict(name, leaked)
        np.testing.assert_array_equal(base["pred_1d"], moved["pred_1d"])


def test_hgb_is_reproducible_for_a_seed_and_subsamples(features):
    a = _predict("hgb", features, max_train_rows=500)
    b = _predict("hgb", features, max_train_rows=500)
    np.testing.assert_array_equal(a["pred_1d"], b["pred_1d"])


def test_oracle_needs_its_table_and_unknown_names_fail(features):
    with pytest.raises(ValueError, match="oracle_alpha"):
        fit_predict_baseline("oracle", features, SPLITS, 0, [1], feature_cols=FEATURES)
    with pytest.raises(ValueError, match="unknown name 'lstm'"):
        fit_predict_baseline("lstm", features, SPLITS, 0, [1], feature_cols=FEATURES)
    with pytest.raises(ValueError, match="no fold 3"):
        fit_predict_baseline("momentum", features, SPLITS, 3, [1], feature_cols=FEATURES)


def test_plain_ridge_leaves_out_the_peer_family_the_others_keep_it():
    columns = [*registry.model_input_names()]
    peer = set(registry.feature_names("graph") + registry.mask_names("graph"))
    assert peer and peer <= set(columns)
    assert not peer & set(baseline_inputs("ridge", columns))
    assert set(baseline_inputs("ridge", columns)) == set(columns) - peer
    for name in ("peer_ridge", "hgb", "structural"):
        assert baseline_inputs(name, columns) == columns


def test_the_ridge_learners_differ_only_by_their_inputs(features):
    ridge = _predict("ridge", features)
    for name in ("peer_ridge", "structural"):
        other = _predict(name, features)
        np.testing.assert_array_equal(other["pred_1d"], ridge["pred_1d"])


@pytest.mark.parametrize("name", ["ridge", "hgb", "momentum", "oracle"])
def test_validation_days_come_from_the_same_fit_and_leave_the_test_days_as_they_were(
    features, name
):
    oracle = features.select("Date", "Code", "alpha_1d")
    blocks = fit_predict_blocks(
        name,
        features.drop("alpha_1d"),
        SPLITS,
        0,
        [1],
        ("val", "test"),
        feature_cols=FEATURES,
        seed=3,
        oracle_alpha=oracle,
        hgb_params=HGB_FAST,
    )
    assert blocks["test"].equals(_predict(name, features)), "test days unchanged"
    val = blocks["val"]
    assert val.columns == blocks["test"].columns
    assert val["Date"].min() == DAYS[32] and val["Date"].max() == DAYS[37]
    assert daily_ic(val, "pred_1d", "target_1d").table["rank_ic"].mean() > 0.3


def test_inputs_ridge_reads_the_families_the_network_reads():
    columns = [
        "ret_1d",
        "resid_mom_20d",
        "mom_payoff_5d",
        "earnings_surprise",
        "peer_ret_1d",
        "is_returns_valid",
        "is_momentum_valid",
        "is_earnings_valid",
        "is_peer_valid",
    ]
    assert baseline_inputs("inputs_ridge", columns, ["momentum", "earnings"]) == [
        "resid_mom_20d",
        "mom_payoff_5d",
        "earnings_surprise",
        "is_momentum_valid",
        "is_earnings_valid",
    ]
    assert baseline_inputs("inputs_ridge", columns) == columns, "no selection: every input"
    assert "peer_ret_1d" not in baseline_inputs("ridge", columns)
