import itertools

import pytest
import torch

from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig
from tests.model.day_batches import HORIZONS, day_batch

F = 4


def make_model(**overrides) -> ATFTGATFAN:
    torch.manual_seed(0)
    cfg = ModelConfig(n_features=F, hidden=8, horizons=HORIZONS, attn_heads=2, **overrides)
    cfg.gat.heads = 2
    return ATFTGATFAN(cfg)


@pytest.mark.parametrize(("n", "per_node"), [(1, 0), (2, 1), (7, 0), (25, 3)])
def test_output_shapes_and_dtypes(n, per_node):
    model = make_model().eval()
    out = model(day_batch(n=n, per_node=per_node), return_interpretation=True)
    assert set(out["quantiles"]) == set(HORIZONS)
    for h in HORIZONS:
        q = out["quantiles"][h]
        assert q.shape == (n, 5) and q.dtype == torch.float32 and torch.isfinite(q).all()
        assert torch.all(q[:, 1:] >= q[:, :-1])
        torch.testing.assert_close(out["point"][h], q[:, 2])
    assert out["aux_loss"].dim() == 0
    info = out["interpretation"]
    assert info["vsn_weights"].shape == (n, F)
    assert info["fan_window_weights"].shape == (F, 4)  # raw + windows 5, 10, 20
    assert info["san_slice_weights"].shape == (4,)
    assert info["temporal_attention"].shape == (n, 12)
    assert len(info["gat_attention"]) == 2 and info["gat_attention"][0]["alpha"].shape[1] == 2


def test_feature_width_mismatch_is_a_clear_error():
    model = make_model()
    with pytest.raises(ValueError, match=r"5 features\), but ModelConfig.n_features is 4"):
        model(day_batch(n_features=5))


def test_static_index_outside_the_vocabulary_is_a_clear_error():
    batch = day_batch()
    batch["static"]["sector33"][0] = 40
    with pytest.raises(ValueError, match=r"static\['sector33'\] has index 40"):
        make_model()(batch)


def randomise(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


@pytest.mark.parametrize("name", ["fan", "san", "gat"])
def test_a_switched_off_module_has_no_effect_and_a_switched_on_one_does(name):
    batch = day_batch(per_node=3)
    for enabled in (False, True):
        model = make_model(**{f"use_{name}": enabled}).eval()
        before = model(batch)["point"][1]
        randomise(getattr(model, name))
        after = model(batch)["point"][1]
        assert torch.allclose(before, after) != enabled


def test_edges_matter_only_through_the_graph_path():
    batch = day_batch(n=10, per_node=3)
    no_edges = dict(
        batch, edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 3)
    )
    model = make_model(use_gat=False).eval()
    torch.testing.assert_close(
        model(batch)["point"][1], model(no_edges)["point"][1], rtol=0, atol=0
    )

    model.set_modules(use_gat=True)
    seen = []
    model.gat.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    with_edges, without = model(batch)["point"][1], model(no_edges)["point"][1]
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=0)  # z before fusion
    assert not torch.allclose(with_edges, without)


def test_permuting_the_stocks_permutes_the_predictions():
    model = make_model().eval()
    batch = day_batch(n=9, per_node=3, seed=5)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    inverse = torch.argsort(perm)
    permuted = dict(
        batch,
        x=batch["x"][perm],
        mask=batch["mask"][perm],
        static={k: v[perm] for k, v in batch["static"].items()},
        edge_index=inverse[batch["edge_index"]],
    )
    torch.testing.assert_close(
        model(permuted)["point"][5], model(batch)["point"][5][perm], atol=1e-5, rtol=1e-5
    )


SUBMODULES = ("fan", "san", "static", "vsn", "encoder", "gat", "heads")


def modules_with_gradient(model: ATFTGATFAN) -> set[str]:
    return {
        name
        for name in SUBMODULES
        if any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()
        )
    }


@pytest.mark.parametrize(
    ("use_fan", "use_san", "use_gat"), list(itertools.product([False, True], repeat=3))
)
def test_exactly_the_switched_on_modules_receive_gradients(use_fan, use_san, use_gat):
    model = make_model(use_fan=use_fan, use_san=use_san, use_gat=use_gat)
    batch = day_batch(n=10, per_node=3)
    total, _ = ATFTLoss(LossConfig(rank_weight=1.0, aux_weight=1.0))(model(batch), batch)
    total.backward()
    expected = {"static", "vsn", "encoder", "heads"}
    expected |= {name for name, on in (("fan", use_fan), ("san", use_san), ("gat", use_gat)) if on}
    assert modules_with_gradient(model) == expected


def test_fourier_mode_doubles_the_selection_width_and_runs_switched_off():
    cfg = ModelConfig.from_dict(
        {
            "n_features": F,
            "hidden": 8,
            "horizons": list(HORIZONS),
            "attn_heads": 2,
            "fan": {"mode": "fourier", "top_k": 2},
            "gat": {"heads": 2},
        }
    )
    model = ATFTGATFAN(cfg).eval()
    assert model.vsn.embed_scale.shape == (2 * F, 8)
    batch = day_batch()
    on = model(batch, return_interpretation=True)
    assert on["interpretation"]["vsn_weights"].shape == (6, 2 * F)
    model.set_modules(use_fan=False)
    off = model(batch)
    assert not torch.allclose(on["point"][1], off["point"][1])
    assert cfg.use_fan is True  # set_modules changed the model's copy only


def test_state_dicts_load_across_phases():
    phase0 = make_model(use_fan=False, use_san=False, use_gat=False)
    phase2 = make_model()
    phase2.load_state_dict(phase0.state_dict(), strict=True)
    batch = day_batch()
    phase0.eval(), phase2.eval()
    phase2.set_modules(use_fan=False, use_san=False, use_gat=False)
    torch.testing.assert_close(phase0(batch)["point"][1], phase2(batch)["point"][1])


def test_with_fan_and_san_off_variable_selection_sees_the_raw_input():
    model = make_model(use_fan=False, use_san=False).eval()
    seen = []
    model.vsn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    batch = day_batch()
    model(batch)
    assert seen[0] is batch["x"]
    model.set_modules(use_fan=True)
    model(batch)
    assert not torch.allclose(seen[1], batch["x"], atol=1e-2)


def test_nonfinite_inputs_give_finite_outputs_and_are_counted():
    model = make_model().eval()
    batch = day_batch()
    batch["x"][0, 3, 1] = float("nan")
    batch["x"][2, -1, 0] = float("inf")
    out = model(batch)
    assert all(torch.isfinite(p).all() for p in out["point"].values())
    assert int(model.fan.nonfinite_count) == 2


def test_the_linear_skip_starts_at_zero_shifts_every_quantile_alike_and_learns():
    torch.manual_seed(0)
    plain, skip = make_model(), make_model(linear_skip=True)
    skip.load_state_dict(plain.state_dict(), strict=False)  # same network, zero linear map
    plain.eval(), skip.eval()
    batch = day_batch(12)
    torch.testing.assert_close(skip(batch)["point"][1], plain(batch)["point"][1])
    with torch.no_grad():
        skip.heads.linear.weight.normal_()
    x_last = torch.nan_to_num(batch["x"][:, -1])
    shifted = skip(batch)["quantiles"]
    base = plain(batch)["quantiles"]
    for k, h in enumerate(HORIZONS):
        expected = x_last @ skip.heads.linear.weight[k]
        torch.testing.assert_close(shifted[h] - base[h], expected[:, None].expand_as(base[h]))
        assert (shifted[h].diff(dim=-1) > 0).all(), "quantiles stay monotone"
    skip(batch)["point"][1].sum().backward()
    assert skip.heads.linear.weight.grad.abs().sum() > 0
