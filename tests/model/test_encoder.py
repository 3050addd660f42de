import torch

from atft_kedro.model.encoder import InterpretableMultiHeadAttention, TemporalEncoder


def test_attention_weights_are_a_distribution_over_valid_days():
    attention = InterpretableMultiHeadAttention(8, 2, dropout=0.0)
    keys = torch.randn(3, 6, 8)
    valid = torch.ones(3, 6, dtype=torch.bool)
    valid[0, :2] = False
    valid[2] = False  # no valid day at all: uniform, finite
    out, weights = attention(keys[:, -1:], keys, valid)
    assert out.shape == (3, 1, 8) and weights.shape == (3, 1, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1))
    assert torch.all(weights[0, 0, :2] == 0)
    torch.testing.assert_close(weights[2, 0], torch.full((6,), 1 / 6))


def test_value_projection_is_shared_by_heads():
    attention = InterpretableMultiHeadAttention(8, 4, dropout=0.0)
    assert attention.v.out_features == 2  # d_head, not hidden


def test_encoder_reads_out_the_last_day_and_uses_the_whole_window():
    torch.manual_seed(0)
    encoder = TemporalEncoder(8, 1, 2, dropout=0.0).eval()
    x = torch.randn(4, 10, 8)
    mask = torch.ones(4, 10, dtype=torch.bool)
    state = torch.randn(4, 8)
    z, attn = encoder(x, mask, state)
    assert z.shape == (4, 8) and attn.shape == (4, 10)
    early = x.clone()
    early[:, 0] += 1.0
    assert not torch.allclose(encoder(early, mask, state)[0], z)
    assert not torch.allclose(encoder(x, mask, torch.randn(4, 8))[0], z)
