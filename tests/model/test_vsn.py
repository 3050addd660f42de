import pytest
import torch

from atft_kedro.model.vsn import StaticContext, VariableSelection


def test_selection_weights_are_a_distribution_and_the_embedding_is_shared_and_linear():
    torch.manual_seed(0)
    vsn = VariableSelection(5, 8, dropout=0.0).eval()
    u = torch.randn(3, 4, 5)
    context = torch.randn(3, 8)
    selected, v = vsn(u, context)
    assert selected.shape == (3, 4, 8) and v.shape == (3, 4, 5)
    torch.testing.assert_close(v.sum(-1), torch.ones(3, 4))
    # the same combination written out per feature: Σ_f v_f (u_f W_f + b_f)
    per_feature = u.unsqueeze(-1) * vsn.embed_scale + vsn.embed_bias  # [N, L, F, H]
    explicit = vsn.post((v.unsqueeze(-1) * per_feature).sum(2))
    torch.testing.assert_close(selected, explicit)
    assert not torch.allclose(vsn(u, torch.randn(3, 8))[1], v)  # static context moves selection


def test_parameters_grow_linearly_not_per_feature_grn():
    small = sum(p.numel() for p in VariableSelection(10, 16, 0.0).parameters())
    large = sum(p.numel() for p in VariableSelection(20, 16, 0.0).parameters())
    # 10 more features cost the embedding (2·10·H) plus the selection GRN's in/out maps
    # (10·H in, 10·2H out in the GLU, 10 for the bias, 10·2 LayerNorm), never a GRN each
    assert large - small == 10 * (2 * 16 + 16 + 2 * 16) + 10 * 2 + 10 * 2


def test_static_context_checks_the_vocabulary():
    static = StaticContext(3, 33, 8, dropout=0.0)
    context, state = static(torch.tensor([0, 3]), torch.tensor([33, 1]))
    assert context.shape == state.shape == (2, 8)
    with pytest.raises(ValueError, match=r"static\['market'\] has index 4"):
        static(torch.tensor([4]), torch.tensor([1]))
