import pytest

from atft_kedro.model.config import LossConfig, ModelConfig


def test_from_dict_builds_nested_configs_and_tuples():
    cfg = ModelConfig.from_dict(
        {"n_features": 3, "horizons": [1, 5], "fan": {"mode": "fourier", "windows": [3, 7]}}
    )
    assert cfg.fan.windows == (3, 7) and cfg.horizons == (1, 5)
    assert cfg.vsn_input_width == 6
    loss = LossConfig.from_dict({"horizon_weights": {"1": 2.0, "5": 1.0}})
    assert loss.horizon_weights == {1: 2.0, 5: 1.0}


def test_unknown_keys_and_inconsistent_settings_are_errors():
    with pytest.raises(ValueError, match=r"ModelConfig.fan: unknown key\(s\) \['windowz'\]"):
        ModelConfig.from_dict({"n_features": 3, "fan": {"windowz": [5]}})
    with pytest.raises(ValueError, match=r"LossConfig: unknown key\(s\) \['rank'\]"):
        LossConfig.from_dict({"rank": 1.0})
    with pytest.raises(ValueError, match="contain 0.5"):
        ModelConfig(n_features=3, quantiles=(0.1, 0.9))
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(n_features=3, hidden=10, attn_heads=4)
    with pytest.raises(ValueError, match="FANConfig.mode"):
        ModelConfig.from_dict({"n_features": 3, "fan": {"mode": "wavelet"}})
