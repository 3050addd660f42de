import torch

from atft_kedro.model.grn import GLU, GRN


def test_glu_gate_can_close_the_output():
    glu = GLU(4, 3)
    with torch.no_grad():
        glu.proj.bias[3:] = -1e4  # gate half
    assert glu(torch.randn(5, 4)).abs().max() < 1e-6


def test_grn_shapes_context_and_residual():
    torch.manual_seed(0)
    grn = GRN(6, 8, 4, d_context=3).eval()
    a, c = torch.randn(2, 5, 6), torch.randn(2, 1, 3)
    out = grn(a, c)
    assert out.shape == (2, 5, 4)
    assert not torch.allclose(out, grn(a, torch.randn(2, 1, 3)))
    same = GRN(4, 8, 4).eval()
    with torch.no_grad():
        same.glu.proj.bias[4:] = -1e4  # closed gate: LayerNorm(a)
    x = torch.randn(3, 4)
    torch.testing.assert_close(same(x), torch.nn.functional.layer_norm(x, (4,)), atol=1e-5, rtol=0)
