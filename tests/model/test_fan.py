import torch

from atft_kedro.model.config import FANConfig
from atft_kedro.model.fan import FAN, trailing_moments


def _constant_weights(fan: FAN) -> FAN:
    """Make α a per-feature constant (logits = the per-feature bias only)."""
    with torch.no_grad():
        fan.weight_logits.weight.zero_()
        fan.weight_logits.bias.zero_()
    return fan


def test_trailing_moments_match_a_direct_window_computation():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 9, 2, generator=g, dtype=torch.float64) + 5.0
    valid = (torch.rand(3, 9, 1, generator=g) > 0.3).double()
    ((mean, var),) = trailing_moments(x, valid, windows=(4,))
    for n in range(3):
        for t in range(9):
            days = [s for s in range(max(0, t - 3), t + 1) if valid[n, s, 0]]
            if not days:
                assert torch.all(mean[n, t] == 0)
                continue
            window = x[n, days]
            torch.testing.assert_close(mean[n, t], window.mean(0))
            torch.testing.assert_close(var[n, t], window.var(0, unbiased=False))


def test_normalised_series_at_day_s_uses_no_later_day():
    # α constant: the output is a fixed mix of x and z_w, both causal position by position.
    fan = _constant_weights(FAN(2, FANConfig(windows=(4,))))
    x = torch.randn(2, 10, 2)
    later = x.clone()
    later[:, 6:] += 3.0 * torch.randn(2, 4, 2)
    before, _, _ = fan(x)
    after, _, _ = fan(later)
    torch.testing.assert_close(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_output_mixes_the_windows_with_weights_from_the_last_days_statistics():
    torch.manual_seed(0)
    cfg = FANConfig(windows=(2, 4))
    fan = FAN(3, cfg).double()
    with torch.no_grad():
        fan.feature_logit_bias.normal_()
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    out, _, info = fan(x)
    valid = torch.ones(4, 9, 1, dtype=torch.float64)
    zs, stats = [x], []
    for mu, var in trailing_moments(x, valid, cfg.windows):
        sigma = torch.sqrt(var + cfg.eps).clamp_min(cfg.sigma_floor)
        zs.append(((x - mu) / (sigma + cfg.eps)).clamp(-cfg.clamp, cfg.clamp))
        stats.append((mu[:, -1], sigma[:, -1].log()))
    for n in range(4):
        for f in range(3):
            features = torch.stack([*(m[n, f] for m, _ in stats), *(s[n, f] for _, s in stats)])
            hidden = torch.nn.functional.elu(fan.weight_hidden(features))
            alpha = (fan.weight_logits(hidden) + fan.feature_logit_bias[f]).softmax(0)
            expected = sum(a * z[n, :, f] for a, z in zip(alpha, zs, strict=True))
            torch.testing.assert_close(out[n, :, f], expected)
    assert info["fan_window_weights"].shape == (3, 3)  # raw + two windows


def test_output_differs_from_input_and_depends_on_the_windows_history():
    fan = FAN(3, FANConfig())
    x = torch.randn(4, 20, 3)
    out, _, _ = fan(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x, atol=1e-2)
    calmer = x.clone()
    calmer[:, :-1] = x[:, :-1] * 0.2  # same last day, less variation before it
    out_calmer, _, _ = fan(calmer)
    assert (out_calmer[:, -1] - out[:, -1]).abs().max() > 1e-2


def test_gradcheck_multi_window_in_double():
    fan = FAN(2, FANConfig(windows=(2, 3, 5))).double()
    x = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fan(v)[0], (x,))
    assert torch.autograd.gradcheck(lambda v: fan(v)[1], (x,))


def test_gradcheck_fourier_in_double():
    fan = FAN(2, FANConfig(mode="fourier", top_k=2)).double()
    x = torch.randn(2, 8, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fan(v)[0], (x,))


def test_nonfinite_inputs_are_repaired_and_counted():
    fan = FAN(3, FANConfig())
    x = torch.randn(2, 10, 3)
    x[0, 3, 1] = float("nan")
    x[1, 9, 0] = float("inf")
    x[1, 2, 2] = float("-inf")
    out, aux, _ = fan(x)
    assert torch.isfinite(out).all() and torch.isfinite(aux)
    assert int(fan.nonfinite_count) == 3


def test_constant_series_does_not_divide_by_zero_and_keeps_its_level_through_raw():
    fan = FAN(2, FANConfig())
    out, aux, info = fan(torch.full((2, 20, 2), 7.0))
    assert torch.isfinite(out).all() and torch.isfinite(aux)
    # every window candidate is 0; only the raw candidate carries the level
    alpha_raw = info["fan_window_weights"][:, 0]  # [F], identical for both stocks
    torch.testing.assert_close(out, (7.0 * alpha_raw).expand_as(out))


def test_raw_candidate_passes_the_level_of_constant_features():
    # Two stocks whose feature is constant in the window at different levels: every z_w is 0, so
    # without the raw candidate they would be indistinguishable.
    fan = _constant_weights(FAN(1, FANConfig()))
    x = torch.cat([torch.full((1, 20, 1), -1.0), torch.full((1, 20, 1), 2.0)])
    out, _, _ = fan(x)
    assert (out[1] - out[0]).abs().min() > 0.5
    with torch.no_grad():  # all weight on raw: FAN is the identity
        fan.feature_logit_bias.copy_(torch.tensor([[50.0, 0.0, 0.0, 0.0]]))
    x = torch.randn(3, 20, 1)
    torch.testing.assert_close(fan(x)[0], x)


def test_identity_when_disabled_is_the_input_itself():
    fan = FAN(3, FANConfig())
    x = torch.randn(2, 10, 3)
    assert fan.identity(x) is x


def test_masked_days_are_zero_and_excluded_from_statistics():
    fan = FAN(2, FANConfig(windows=(3, 5)))
    x = torch.randn(1, 8, 2)
    mask = torch.ones(1, 8, dtype=torch.bool)
    mask[0, 4] = False
    out, _, _ = fan(x, mask)
    changed = x.clone()
    changed[0, 4] = 100.0
    out_changed, _, _ = fan(changed, mask)
    torch.testing.assert_close(out, out_changed)
    assert torch.all(out[0, 4] == 0)


def test_window_weights_are_a_distribution_and_aux_is_their_entropy_gap():
    fan = FAN(3, FANConfig())
    _, aux, info = fan(torch.randn(5, 20, 3))
    weights = info["fan_window_weights"]
    assert weights.shape == (3, 4)  # raw + three windows
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert 0.0 <= float(aux.detach()) <= 1.0
    with torch.no_grad():  # uniform weights: maximal entropy, zero regulariser
        _constant_weights(fan).feature_logit_bias.zero_()
    _, aux_uniform, _ = fan(torch.randn(5, 20, 3))
    assert abs(float(aux_uniform.detach())) < 1e-6 < float(aux.detach())


def test_fourier_removes_the_dominant_components_into_extra_channels():
    t = torch.arange(16, dtype=torch.float64)
    x = (3.0 + torch.sin(2 * torch.pi * 2 * t / 16)).reshape(1, 16, 1)
    fan = FAN(1, FANConfig(mode="fourier", top_k=2))
    out, _, _ = fan(x)
    assert out.shape == (1, 16, 2)
    torch.testing.assert_close(
        out[..., 0], torch.zeros(1, 16, dtype=torch.float64), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(out[..., 1], x[..., 0])
    torch.testing.assert_close(fan.identity(x), torch.cat([x, torch.zeros_like(x)], -1))
