import torch

from atft_kedro.model.config import GATConfig
from atft_kedro.model.gat import GraphAttentionFusion, drop_edges, peer_mean
from tests.model.day_batches import random_graph


def make_gat(hidden: int = 8) -> GraphAttentionFusion:
    torch.manual_seed(0)
    config = GATConfig(heads=2, peer_inputs=False)
    return GraphAttentionFusion(hidden, config, dropout=0.0, n_features=5).eval()


def test_permuting_stocks_and_edges_permutes_the_output():
    gat = make_gat()
    g = torch.Generator().manual_seed(3)
    z = torch.randn(9, 8, generator=g)
    edge_index, edge_attr = random_graph(9, 3, g)
    perm = torch.randperm(9, generator=g)
    inverse = torch.argsort(perm)  # old position → new position
    out, _ = gat(z, edge_index, edge_attr)
    out_perm, _ = gat(z[perm], inverse[edge_index], edge_attr)
    torch.testing.assert_close(out_perm, out[perm], atol=1e-5, rtol=1e-5)


def test_edge_attributes_change_the_attention_and_the_output():
    gat = make_gat()
    g = torch.Generator().manual_seed(4)
    z = torch.randn(6, 8, generator=g)
    edge_index, edge_attr = random_graph(6, 2, g)
    out, attention = gat(z, edge_index, edge_attr)
    flipped = edge_attr.clone()
    flipped[:, 0] = -flipped[:, 0]
    out_flipped, attention_flipped = gat(z, edge_index, flipped)
    assert not torch.allclose(attention[0]["alpha"], attention_flipped[0]["alpha"])
    assert not torch.allclose(out, out_flipped)


def test_no_edges_and_a_single_stock():
    gat = make_gat()
    empty = torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3)
    for n in (1, 5):
        out, attention = gat(torch.randn(n, 8), *empty)
        assert out.shape == (n, 8) and torch.isfinite(out).all()
        # only self-loops remain, each with weight 1
        torch.testing.assert_close(attention[0]["alpha"], torch.ones(n, 2))


def test_edge_attribute_width_is_checked():
    gat = make_gat()
    try:
        gat(torch.randn(2, 8), torch.tensor([[0], [1]]), torch.zeros(1, 2))
    except ValueError as err:
        assert "2 columns" in str(err) and "edge_dim is 3" in str(err)
    else:
        raise AssertionError("expected ValueError")


def test_edge_dropout_is_seeded_and_drops_about_p():
    edge_index = torch.arange(2000).repeat(2, 1)
    edge_attr = torch.zeros(2000, 3)
    kept, attr = drop_edges(edge_index, edge_attr, 0.3, torch.Generator().manual_seed(0))
    again, _ = drop_edges(edge_index, edge_attr, 0.3, torch.Generator().manual_seed(0))
    assert 0.65 < kept.shape[1] / 2000 < 0.75 and attr.shape[0] == kept.shape[1]
    assert torch.equal(kept, again)
    assert drop_edges(edge_index, edge_attr, 0.0)[0] is edge_index


def dense_gatv2(
    layer, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
) -> torch.Tensor:
    """GATv2 written out with dense [N, N] matrices, self-loops carrying attribute [1, 1, 1]."""
    n, heads, c = x.shape[0], layer.heads, layer.out_channels
    adjacency = torch.eye(n, dtype=torch.bool)
    attr = torch.ones(n, n, edge_attr.shape[1])  # target i, source j
    adjacency[edge_index[1], edge_index[0]] = True
    attr[edge_index[1], edge_index[0]] = edge_attr
    source = layer.lin_l(x).view(n, heads, c)
    target = layer.lin_r(x).view(n, heads, c)
    edge = layer.lin_edge(attr).view(n, n, heads, c)
    hidden = torch.nn.functional.leaky_relu(
        target[:, None] + source[None, :] + edge, layer.negative_slope
    )
    scores = (hidden * layer.att).sum(-1).masked_fill(~adjacency[..., None], float("-inf"))
    alpha = scores.softmax(dim=1)  # over sources j
    return torch.einsum("ijh,jhc->ihc", alpha, source).reshape(n, heads * c) + layer.bias


def test_library_layer_matches_a_dense_gatv2_computation():
    gat = make_gat()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(7, 8, generator=g)
    edge_index, edge_attr = random_graph(7, 2, g)
    edge_index, edge_attr = (
        edge_index[:, ::2],
        edge_attr[::2],
    )  # keep the graph simple (no duplicates)
    layer = gat.layers[0]
    torch.testing.assert_close(
        layer(x, edge_index, edge_attr),
        dense_gatv2(layer, x, edge_index, edge_attr),
        atol=1e-5,
        rtol=1e-5,
    )


def test_peer_mean_matches_hand_computation():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [-1.0, 4.0], [7.0, 7.0]])
    # edges j → i: 1 → 0 (ρ 0.5), 2 → 0 (ρ -0.25), 0 → 1 (ρ 0.5); node 2 and 3 receive nothing
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])
    weight = torch.tensor([0.5, -0.25, 0.5])
    out = peer_mean(x, edge_index, weight)
    expected_0 = (0.5 * x[1] - 0.25 * x[2]) / 0.75
    torch.testing.assert_close(out[0], expected_0)
    torch.testing.assert_close(out[1], x[0])
    assert torch.equal(out[2:], torch.zeros(2, 2))


def test_peer_inputs_carry_the_neighbours_latest_inputs():
    torch.manual_seed(0)
    gat = GraphAttentionFusion(8, GATConfig(heads=2), dropout=0.0, n_features=5).eval()
    g = torch.Generator().manual_seed(5)
    z, x_last = torch.randn(6, 8, generator=g), torch.randn(6, 5, generator=g)
    edge_index = torch.tensor([[1, 2, 3], [0, 3, 2]])  # 1 → 0, and 2 ↔ 3
    edge_attr = torch.tensor([[0.6, 1.0, 0.0], [0.4, 0.0, 1.0], [0.4, 0.0, 1.0]])
    out, _ = gat(z, edge_index, edge_attr, x_last)

    def moved(node: int) -> list[bool]:
        changed = x_last.clone()
        changed[node] += 1.0
        return ((gat(z, edge_index, edge_attr, changed)[0] - out).abs().sum(-1) > 1e-6).tolist()

    assert moved(1) == [True, False, False, False, False, False]  # node 0's peer, not its own
    assert moved(0) == [False] * 6  # nobody's peer
    assert moved(2) == [False, False, True, True, False, False]  # 3's peer, and 3 is 2's peer
