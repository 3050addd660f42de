import torch

from atft_kedro.model.heads import QuantileHeads

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def test_quantiles_never_cross():
    heads = QuantileHeads(8, (1, 5), QUANTILES, dropout=0.0)
    out = heads(torch.randn(64, 8))
    extreme = heads(50.0 * torch.randn(64, 8))  # gaps may underflow to 0, never below
    assert set(out) == {1, 5}
    for h, q in out.items():
        assert q.shape == (64, 5)
        assert torch.all(q[:, 1:] > q[:, :-1])
        assert torch.all(extreme[h][:, 1:] >= extreme[h][:, :-1])


def test_median_is_the_raw_median_output():
    heads = QuantileHeads(4, (1,), (0.25, 0.5, 0.9), dropout=0.0).eval()
    z = torch.randn(3, 4)
    raw = heads.per_horizon["1"].net(z)
    torch.testing.assert_close(heads(z)[1][:, 1], raw[:, 1])
    assert heads.median_index == 1
