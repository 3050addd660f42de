import pytest
import torch

from atft_kedro.model import losses
from atft_kedro.model.config import LossConfig
from atft_kedro.model.losses import ATFTLoss, listnet_loss, long_short_return, pinball_loss


def test_pinball_matches_a_hand_computation():
    taus = torch.tensor([0.1, 0.5, 0.9])
    q = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0]])
    y = torch.tensor([1.5, -2.0])
    valid = torch.tensor([True, True])
    # stock 0: e = 1.5, 0.5, -0.5 → 0.15, 0.25, 0.05 ; stock 1: e = -1, -2, -3 → 0.9, 1.0, 0.3
    expected = (0.15 + 0.25 + 0.05 + 0.9 + 1.0 + 0.3) / 6
    torch.testing.assert_close(pinball_loss(q, y, valid, taus), torch.tensor(expected))


def test_listnet_decreases_as_predictions_move_toward_the_targets_order():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(30, generator=g)
    valid = torch.ones(30, dtype=torch.bool)
    noise = torch.randn(30, generator=g)
    values = [float(listnet_loss(a * y + (1 - a) * noise, y, valid)) for a in (0.0, 0.5, 0.9, 1.0)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert float(listnet_loss(-y, y, valid)) > values[0]


def test_listnet_is_scale_free_and_needs_two_stocks():
    y = torch.tensor([0.01, -0.02, 0.03, 0.0])
    valid = torch.ones(4, dtype=torch.bool)
    s = torch.tensor([1.0, -1.0, 2.0, 0.5])
    torch.testing.assert_close(listnet_loss(s, y, valid), listnet_loss(100 * s - 3, 50 * y, valid))
    assert float(listnet_loss(s, y, torch.tensor([True, False, False, False]))) == 0.0


def test_long_short_portfolio_is_dollar_neutral():
    s = torch.tensor([3.0, 1.0, 2.0])
    y = torch.tensor([0.1, -0.1, 0.0])
    # demeaned 1, -1, 0 → weights 0.5, -0.5, 0 → return 0.5·0.1 + 0.5·0.1
    torch.testing.assert_close(
        long_short_return(s, y, torch.ones(3, dtype=torch.bool)), torch.tensor(0.1)
    )


def model_output(n: int = 8, horizons=(1, 5), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, len(horizons), generator=g, requires_grad=True)
    quantiles = {h: base[:, i : i + 1] + torch.linspace(-1, 1, 5) for i, h in enumerate(horizons)}
    out = {
        "quantiles": quantiles,
        "point": {h: q[:, 2] for h, q in quantiles.items()},
        "aux_loss": torch.tensor(0.3),
    }
    y = {h: torch.randn(n, generator=g) for h in horizons}
    y[1][[2, 5]] = float("nan")
    batch = {"y": y, "y_mask": {h: torch.isfinite(v) for h, v in y.items()}}
    return base, out, batch


def test_masked_targets_change_no_loss_and_no_gradient():
    cfg = LossConfig(rank_weight=1.0, sharpe_weight=1.0)
    results = []
    for fill in (float("nan"), 1e6):
        base, out, batch = model_output()
        batch["y"][1][[2, 5]] = fill
        total, parts = ATFTLoss(cfg)(out, batch)
        total.backward()
        results.append((parts, base.grad.clone()))
        assert torch.isfinite(base.grad).all()
    assert results[0][0] == results[1][0]
    torch.testing.assert_close(results[0][1], results[1][1])
    assert torch.all(results[0][1][[2, 5], 0] == 0)  # masked stocks get nothing from horizon 1


def test_total_is_the_weighted_sum_and_zero_weights_are_not_computed(monkeypatch):
    cfg = LossConfig(
        pinball_weight=2.0, rank_weight=0.5, aux_weight=0.1, horizon_weights={1: 1.0, 5: 3.0}
    )
    _, out, batch = model_output()
    total, parts = ATFTLoss(cfg)(out, batch)
    assert set(parts) == {"pinball", "rank", "aux", "total"}
    torch.testing.assert_close(
        total, torch.tensor(2.0 * parts["pinball"] + 0.5 * parts["rank"] + 0.1 * 0.3)
    )
    taus = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
    per_h = {
        h: pinball_loss(out["quantiles"][h], batch["y"][h], batch["y_mask"][h], taus)
        for h in (1, 5)
    }
    assert parts["pinball"] == pytest.approx(
        float((per_h[1] + 3 * per_h[5]).detach() / 4), rel=1e-6
    )

    def boom(*args, **kwargs):
        raise AssertionError("a zero-weight term was computed")

    monkeypatch.setattr(losses, "listnet_loss", boom)
    monkeypatch.setattr(losses, "pinball_loss", boom)
    _, parts = ATFTLoss(LossConfig(pinball_weight=0.0, rank_weight=0.0, aux_weight=1.0))(out, batch)
    assert set(parts) == {"aux", "total"}


def test_missing_horizon_weight_is_an_error():
    _, out, batch = model_output()
    with pytest.raises(ValueError, match=r"horizon\(s\) \[5\]"):
        ATFTLoss(LossConfig(horizon_weights={1: 1.0}))(out, batch)


def test_sharpe_has_gradient_and_its_ema_state_moves_only_in_training():
    loss = ATFTLoss(
        LossConfig(pinball_weight=0.0, rank_weight=0.0, aux_weight=0.0, sharpe_weight=1.0)
    )
    for day in range(3):
        base, out, batch = model_output(seed=day)
        total, parts = loss(out, batch)
        total.backward()
        assert set(parts) == {"sharpe", "total"}
        assert base.grad[:, 0].abs().sum() > 0  # sharpe_horizon defaults to the shortest, 1
        assert torch.all(base.grad[:, 1] == 0)
    assert int(loss.sharpe_days) == 3
    state = loss.sharpe_second.clone()
    with torch.no_grad():
        loss(*model_output(seed=9)[1:])
    loss.eval()
    loss(*model_output(seed=10)[1:])
    assert int(loss.sharpe_days) == 3 and torch.equal(state, loss.sharpe_second)
    loss.reset_state()
    assert int(loss.sharpe_days) == 0


def test_rank_gauss_target_is_the_normal_score_of_the_day_s_average_rank():
    y = torch.tensor([0.03, -0.01, 0.03, 0.5, 9.0])
    valid = torch.tensor([True, True, True, True, False])
    score = losses.cross_sectional_target(y, valid, "rank_gauss")
    # ranks among the 4 valid: -0.01 → 1, 0.03 → 2.5 (tie), 0.5 → 4; Φ⁻¹((r − 0.5) / 4)
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = normal.icdf(torch.tensor([2.0, 0.5, 2.0, 3.5]) / 4)
    torch.testing.assert_close(score[:4], expected)
    assert score[4] == 0.0
    # a monotone change of the returns leaves it unchanged; scale and outliers do not matter
    torch.testing.assert_close(
        losses.cross_sectional_target(100 * y**3, valid, "rank_gauss"), score
    )


def test_zscore_target_is_clipped_and_raw_is_untouched():
    y = torch.tensor([0.0] * 19 + [1.0])
    valid = torch.ones(20, dtype=torch.bool)
    z = losses.cross_sectional_target(y, valid, "zscore")
    assert float(z.max()) == pytest.approx(3.0) and abs(float(z.mean())) < 0.2
    assert losses.cross_sectional_target(y, valid, "raw") is y


def test_squared_error_term_fits_the_transformed_target_and_ignores_masked_stocks():
    cfg = LossConfig(
        pinball_weight=0.0,
        rank_weight=0.0,
        mse_weight=1.0,
        aux_weight=0.0,
        target="rank_gauss",
        horizon_weights={1: 1.0, 5: 0.0},
    )
    base, out, batch = model_output()
    total, parts = ATFTLoss(cfg)(out, batch)
    valid = batch["y_mask"][1]
    target = losses.cross_sectional_target(torch.nan_to_num(batch["y"][1]), valid, "rank_gauss")
    expected = ((out["point"][1] - target)[valid] ** 2).mean()
    assert parts["mse"] == pytest.approx(float(expected), rel=1e-6)
    total.backward()
    assert torch.all(base.grad[[2, 5], 0] == 0)
    with pytest.raises(ValueError, match="target must be raw, rank_gauss or zscore"):
        LossConfig(target="ranks")
