from atft_kedro.features import build_features, registry


def test_registry_names_are_unique_and_enough():
    names = registry.feature_names()
    assert len(names) == len(set(names))
    assert len(names) >= 78


def test_every_spec_is_documented():
    for spec in registry.FEATURES:
        assert spec.formula.strip(), spec.name
        assert spec.family in registry.FAMILIES
        assert spec.warmup >= 0
        assert not spec.name.startswith("target_")
        assert "oracle" not in spec.name and not spec.name.startswith("alpha_")


def test_market_wide_and_graph_families_are_not_cs_normalised():
    for spec in registry.FEATURES:
        if spec.family in ("market", "flows", "peer", "momentum"):
            assert not spec.cs_normalised, spec.name
        else:
            assert spec.cs_normalised, spec.name


def test_model_inputs_are_every_stage_s_features_then_masks():
    assert registry.model_input_names() == registry.feature_names() + registry.mask_names()
    assert registry.feature_names() == registry.feature_names("features") + registry.feature_names(
        "graph"
    )
    assert registry.mask_names("graph") == ["is_peer_valid", "is_momentum_valid"]
    assert registry.mask_names()[-3:] == ["is_peer_valid", "is_momentum_valid", "is_topix_valid"]
    assert all(m.startswith("is_") and m.endswith("_valid") for m in registry.mask_names())


def test_the_graph_stage_is_the_peer_and_momentum_families_the_graph_pipeline_builds():
    from atft_kedro.graph.momentum import MOMENTUM_COLUMNS
    from atft_kedro.graph.peers import PEER_COLUMNS

    assert registry.feature_names("graph") == [*PEER_COLUMNS, *MOMENTUM_COLUMNS]
    assert registry.families("graph") == ["peer", "momentum"]
    assert not {"peer", "momentum"} & set(registry.families("features"))


def test_build_columns_follow_registry_order_of_the_features_stage(tables):
    df = build_features(**tables, horizons=(1, 5))
    keys = ["Date", "Code", "market", "sector33", "sector17"]
    inputs = registry.feature_names("features") + registry.mask_names("features")
    assert df.columns == keys + inputs + ["universe", *registry.target_names((1, 5))]
