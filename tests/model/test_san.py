import pytest
import torch

from atft_kedro.model.config import SANConfig
from atft_kedro.model.san import SAN, slice_membership


def test_slices_of_the_default_window():
    member, taper = slice_membership(20, 4, 0.5)
    spans = [(int(row.nonzero().min()), int(row.nonzero().max()) + 1) for row in member]
    assert spans == [(0, 8), (4, 12), (8, 16), (12, 20)]
    assert torch.all((taper > 0) == (member > 0))


@pytest.mark.parametrize(
    ("length", "k", "overlap"), [(20, 4, 0.5), (7, 3, 0.25), (5, 1, 0.5), (3, 4, 0.5), (13, 5, 0.0)]
)
def test_slices_cover_every_day(length, k, overlap):
    member, _ = slice_membership(length, k, overlap)
    assert member.shape == (k, length)
    assert torch.all(member.sum(0) >= 1)


def direct_san(san: SAN, x: torch.Tensor) -> torch.Tensor:
    """Materialise every slice's normalised values and overlap-add them (no mask, no clamp)."""
    member, taper = (
        m.to(x) for m in slice_membership(x.shape[1], san.cfg.n_slices, san.cfg.overlap)
    )
    pi = san.slice_logits.softmax(0)
    num = torch.zeros_like(x)
    den = torch.zeros(x.shape[1], dtype=x.dtype)
    for k in range(san.cfg.n_slices):
        days = member[k].bool()
        part = x[:, days]
        mu = part.mean(1, keepdim=True)
        sigma = torch.sqrt(part.var(1, unbiased=False, keepdim=True) + san.cfg.eps).clamp_min(
            san.cfg.sigma_floor
        )
        weight = pi[k] * taper[k, days]
        num[:, days] += weight[None, :, None] * (san.gamma[k] * (part - mu) / sigma + san.beta[k])
        den[days] += weight
    return num / den[None, :, None]


def test_matches_a_direct_slice_by_slice_computation():
    san = SAN(3, SANConfig()).double()
    with torch.no_grad():
        san.gamma.uniform_(0.5, 1.5)
        san.beta.normal_()
        san.slice_logits.normal_()
    x = torch.randn(2, 20, 3, dtype=torch.float64)
    out, _, _ = san(x)
    torch.testing.assert_close(out, direct_san(san, x))


def test_gradcheck_in_double():
    san = SAN(2, SANConfig(n_slices=3)).double()
    x = torch.randn(2, 8, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: san(v)[0], (x,))
    params = (san.gamma, san.beta, san.slice_logits)
    assert torch.autograd.gradcheck(
        lambda g, b, s: torch.func.functional_call(
            san, {"gamma": g, "beta": b, "slice_logits": s}, (x.detach(),)
        )[0],
        params,
    )


def test_output_differs_from_input_and_removes_each_slices_level_and_scale():
    san = SAN(2, SANConfig())
    x = torch.randn(3, 20, 2)
    out, _, _ = san(x)
    assert not torch.allclose(out, x, atol=1e-2)
    rescaled, _, _ = san(4.0 * x + 10.0)  # a new level and scale for the whole window
    torch.testing.assert_close(out, rescaled, atol=1e-4, rtol=1e-4)
    drifting = x.clone()
    drifting[:, 10:] = 3.0 * x[:, 10:] + 5.0  # a regime change inside the window
    out_drift, _, _ = san(drifting)
    assert (out_drift - out).abs().max() > 1e-2


def test_nonfinite_inputs_constant_series_and_masked_days():
    san = SAN(2, SANConfig())
    x = torch.randn(2, 20, 2)
    x[0, 5, 0] = float("nan")
    x[1, 0, 1] = float("inf")
    out, _, _ = san(x)
    assert torch.isfinite(out).all() and int(san.nonfinite_count) == 2

    const, _, _ = san(torch.full((1, 20, 2), -3.0))
    torch.testing.assert_close(const, torch.zeros_like(const))

    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[:, 7] = False
    clean = torch.randn(2, 20, 2)
    moved = clean.clone()
    moved[:, 7] = 50.0
    a, _, _ = san(clean, mask)
    b, _, _ = san(moved, mask)
    torch.testing.assert_close(a, b)
    assert torch.all(a[:, 7] == 0)


def test_aux_is_zero_at_identity_affine_and_grows_away_from_it():
    san = SAN(2, SANConfig())
    _, aux, info = san(torch.randn(2, 20, 2))
    assert float(aux.detach()) == 0.0
    torch.testing.assert_close(info["san_slice_weights"].sum(), torch.tensor(1.0))
    with torch.no_grad():
        san.beta.fill_(0.5)
    assert float(san(torch.randn(2, 20, 2))[1].detach()) > 0.0
