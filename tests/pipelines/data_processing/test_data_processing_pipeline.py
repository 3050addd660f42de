"""The data_processing pipeline on the tiny synthetic market, with SequentialRunner in memory."""

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from atft_kedro.features.registry import feature_names, mask_names, target_names
from atft_kedro.pipelines.data_processing import create_pipeline

PARAMS = {
    "market": {"source": "synthetic", "preset": "tiny", "synthetic": {"overrides": {}}},
    "seed": 0,
    "horizons": [1, 5, 10, 20],
    "seq_len": 20,
    "features": {"cs_method": "zscore", "clip": 5.0, "market_close": "15:00", "calendar": "auto"},
    "universe": {},
    "splits": {
        "n_splits": 1,
        "mode": "expanding",
        "train_days": None,
        "embargo_days": 5,
        "val_days": 30,
        "test_days": 40,
    },
}


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so intermediate outputs can be inspected."""

    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def outputs():
    catalog = DataCatalog({f"params:{k}": MemoryDataset(v) for k, v in PARAMS.items()})
    kept = ("features", "splits", "panel", "oracle_alpha", "latent_clusters")
    for name in kept:
        catalog[name] = KeptDataset()
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in kept}


def test_features_follow_the_contract(outputs):
    features, panel = outputs["features"], outputs["panel"]
    assert features.select("Date", "Code").equals(panel.select("Date", "Code"))
    body = [
        c for c in features.columns if c not in ("Date", "Code", "market", "sector33", "sector17")
    ]
    targets = target_names(PARAMS["horizons"])
    assert body == feature_names("features") + mask_names("features") + ["universe", *targets]
    assert features["universe"].dtype == pl.Int8 and features["universe"].sum() > 0
    assert all(features.schema[c] == pl.Float32 for c in feature_names("features") + targets)


def test_oracle_is_ground_truth_only(outputs):
    oracle, features = outputs["oracle_alpha"], outputs["features"]
    assert oracle.height > 0
    planted = [c for c in oracle.columns if c.startswith("alpha_")]
    assert not set(planted) & set(features.columns)
    # No feature is a copy (or a rescaling) of the planted alpha.
    joined = features.join(oracle, on=["Date", "Code"], how="inner")
    corr = joined.select(
        pl.corr(pl.col(f).fill_nan(None), pl.col("alpha_1d")).abs().alias(f)
        for f in feature_names("features")
    ).row(0)
    assert max(c for c in corr if c is not None) < 0.9


def test_latent_clusters_are_evaluation_only(outputs):
    clusters, features = outputs["latent_clusters"], outputs["features"]
    assert clusters.columns == ["Code", "cluster"] and clusters.height > 0
    assert set(features["Code"].unique()) <= set(clusters["Code"])
    assert "cluster" not in features.columns
    joined = features.join(clusters, on="Code")
    corr = joined.select(
        pl.corr(pl.col(f).fill_nan(None), pl.col("cluster").cast(pl.Float64)).abs().alias(f)
        for f in feature_names("features")
    ).row(0)
    assert max(c for c in corr if c is not None) < 0.9


def test_splits_are_purged_by_trading_days(outputs):
    splits, dates = outputs["splits"], outputs["panel"].get_column("Date").unique().sort()
    fold = splits["folds"][0]
    position = {d.isoformat(): i for i, d in enumerate(dates.to_list())}
    gap_val = position[fold["val"][0]] - position[fold["train"][1]] - 1
    gap_test = position[fold["test"][0]] - position[fold["val"][1]] - 1
    assert gap_val == gap_test == (20 + 20 - 1) + 5
