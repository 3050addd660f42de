import numpy as np
import pytest
import torch

from atft_kedro.evaluation.interpretation import (
    MASK_GROUP,
    InterpretationCollector,
    feature_groups,
    group_rows,
)


def test_feature_groups_follow_the_registry_families():
    assert feature_groups(["ret_1d", "vol_20d", "is_returns_valid", "mystery"]) == [
        "returns",
        "volatility",
        MASK_GROUP,
        "other",
    ]


def test_group_rows_averages_within_each_group_in_first_seen_order():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    names, means = group_rows(rows, ["b", "a", "b"])
    assert names == ["b", "a"]
    np.testing.assert_allclose(means, [[0.75, 0.25], [0.0, 1.0]])


def _day(sector: list[int], alpha: list[float]) -> tuple[dict, dict]:
    """Three stocks; edges 0→1 (same sector), 2→1 (other), then self-loops 0, 1, 2."""
    edge_index = torch.tensor([[0, 2, 0, 1, 2], [1, 1, 0, 1, 2]])
    batch = {"codes": ["a", "b", "c"], "static": {"sector33": torch.tensor(sector)}}
    info = {
        "vsn_weights": torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.6, 0.4]]),
        "fan_window_weights": torch.tensor([[0.25, 0.75], [0.5, 0.5]]),
        "gat_attention": [
            {"edge_index": edge_index, "alpha": torch.tensor(alpha)[:, None].repeat(1, 2)}
        ],
    }
    return batch, {"interpretation": info}


def test_collector_means_and_edge_types():
    collector = InterpretationCollector(["ret_1d", "is_returns_valid"], seed=0)
    collector.update(*_day([5, 5, 7], [0.3, 0.2, 1.0, 0.5, 1.0]))
    collector.update(*_day([5, 5, 0], [0.1, 0.4, 1.0, 0.5, 1.0]))
    out = collector.result()
    assert out["days"] == 2 and out["groups"] == ["returns", MASK_GROUP]
    assert out["vsn_importance"] == pytest.approx({"ret_1d": 0.4, "is_returns_valid": 0.6})
    np.testing.assert_allclose(out["fan"]["weights"], [[0.25, 0.75], [0.5, 0.5]])
    gat = out["gat"]
    # 0→1 is same-sector both days; 2→1 is "other" (different sector, then unknown sector 0).
    assert gat["same_sector"]["edges"] == 2 and gat["other"]["edges"] == 2
    assert gat["same_sector"]["mean"] == pytest.approx(0.2)
    assert gat["other"]["mean"] == pytest.approx(0.3)
    # stock 1 receives 3 edges (two neighbours + self-loop): relative = alpha × 3
    assert gat["same_sector"]["mean_relative_to_uniform"] == pytest.approx(0.6)
    assert sorted(gat["other"]["sample"]) == pytest.approx([0.2, 0.4])
    assert "san" not in out  # no model given


def test_collector_subsamples_attention_reproducibly():
    def run(seed: int) -> list[float]:
        collector = InterpretationCollector(
            ["ret_1d", "is_returns_valid"], max_samples=3, seed=seed
        )
        for k in range(4):
            collector.update(*_day([5, 5, 7], [0.1 * k, 0.05 * k, 1.0, 0.5, 1.0]))
        return collector.result()["gat"]["same_sector"]["sample"]

    assert len(run(0)) == 3 and run(0) == run(0)
    sample = np.array(run(0))
    assert len(set(sample)) == 3, "drawn without replacement"
    assert np.allclose(np.round(sample, 1), sample, atol=1e-6), "values of the same-sector edges"
