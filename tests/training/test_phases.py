"""Phase plans and module switches: exactly the intended modules run and learn in each phase."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from atft_kedro.errors import ParameterError
from atft_kedro.loader.datasets import day_loader
from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.fold_data import fit_fold_scaler, fold_data, trading_calendar
from atft_kedro.training.optimisation import parameter_groups
from atft_kedro.training.phases import apply_phase, parse_phase
from tests.training.tiny_market import SEQ_LEN, tiny_config, tiny_training_params

PARAMETERS = Path(__file__).parents[2] / "conf" / "base" / "parameters_training.yml"
BASE = {"static", "vsn", "encoder", "heads"}
EXPECTED = {0: BASE, 1: BASE | {"fan", "san"}, 2: BASE | {"fan", "san", "gat"}}
EXPECTED |= {3: EXPECTED[2], 4: EXPECTED[2]}
# The project defaults keep SAN off (it lowered val RankIC on the synthetic market; see the yml).
# The project's phases: SAN off; phase 2 trains only the new graph layers and the heads.
PROJECT = {phase: modules - {"san"} for phase, modules in EXPECTED.items()} | {2: {"gat", "heads"}}


def test_parse_phase_all_and_single():
    assert parse_phase("all") == [0, 1, 2, 3, 4]
    assert parse_phase(3) == [3] and parse_phase("2") == [2]
    with pytest.raises(ValueError, match="phase must be 0, 1, 2, 3, 4 or all"):
        parse_phase(7)


def test_phase_plan_reads_each_block():
    plan = tiny_config().plan(parse_phase("all"))
    assert [p.phase for p in plan] == [0, 1, 2, 3, 4]
    assert plan[4].averaging.kind == "swa" and plan[4].augmentation.enabled
    assert plan[3].loss.rank_weight > plan[2].loss.rank_weight
    with pytest.raises(
        ParameterError, match=r"training.phases.0: unknown key\(s\) \['learning_rate'\]"
    ):
        TrainingConfig.from_params({"phases": {"0": {"epochs": 1, "learning_rate": 1}}})
    with pytest.raises(
        ParameterError, match=r"training.phases.1.loss: unknown key\(s\) \['rank'\]"
    ):
        TrainingConfig.from_params({"phases": {"1": {"loss": {"rank": 1}}}})
    with pytest.raises(KeyError, match="no block for phase 3"):
        TrainingConfig.from_params({"phases": {"0": {}}}).plan([0, 3])


def first_batch(market):
    cfg = tiny_config()
    fold = market["splits"]["folds"][0]
    calendar = trading_calendar(market["features"])
    scaler = fit_fold_scaler(market["features"], fold, calendar, cfg.scaler, 0)
    data = fold_data(
        market["features"],
        market["graph_edges"],
        fold,
        calendar,
        scaler,
        cfg,
        seq_len=SEQ_LEN,
        seed=0,
    )
    return next(iter(day_loader(data.train))), data.n_features


@pytest.mark.parametrize("phase", [0, 1, 2, 3, 4])
def test_exactly_the_intended_modules_learn(tiny_market, phase):
    config = tiny_config()
    batch, n_features = first_batch(tiny_market)
    assert batch["edge_index"].shape[1] > 0
    torch.manual_seed(0)
    model = ATFTGATFAN(config.model.with_inputs(n_features))
    spec = config.phases[phase]
    learns = apply_phase(model, spec)
    assert {k for k, v in learns.items() if v} == EXPECTED[phase]
    loss, _ = ATFTLoss(spec.loss, model.cfg.quantiles)(model(batch), batch)
    loss.backward()
    for name, module in model.named_children():
        grads = [p.grad for p in module.parameters()]
        if name in EXPECTED[phase]:
            assert any(g is not None and g.abs().sum() > 0 for g in grads), name
        else:
            assert all(not p.requires_grad for p in module.parameters()), name
            assert all(g is None for g in grads), f"{name} is in the forward path"


def test_frozen_modules_are_left_out_of_the_optimizer(tiny_market):
    params = tiny_training_params()
    params["phases"]["2"]["trainable"] = ["gat", "heads"]
    params["phases"]["2"]["lr_multipliers"] = {"gat": 3.0}
    batch, n_features = first_batch(tiny_market)
    config = tiny_config(params)
    model = ATFTGATFAN(config.model.with_inputs(n_features))
    spec = config.phases[2]
    apply_phase(model, spec)
    groups = parameter_groups(model, spec.lr, spec.lr_multipliers, 0.01)
    assert {g["name"] for g in groups} == {"gat", "heads"}
    assert all(g["lr"] == pytest.approx(3 * spec.lr) for g in groups if g["name"] == "gat")
    assert not any(p.requires_grad for p in model.vsn.parameters())
    with pytest.raises(ValueError, match="not sub-modules"):
        params["phases"]["2"]["trainable"] = ["attention"]
        apply_phase(model, tiny_config(params).phases[2])


def test_the_project_parameters_build_every_phase_and_the_model():
    conf = yaml.safe_load(PARAMETERS.read_text())
    config = TrainingConfig.from_params(conf["training"], horizons=[1, 5, 10, 20])
    plan = config.plan(parse_phase(conf["phase"]))
    assert [spec.phase for spec in plan] == [0, 1, 2, 3, 4]
    model = ATFTGATFAN(config.model.with_inputs(10))
    for spec in plan:
        learns = apply_phase(model, spec)
        assert {k for k, v in learns.items() if v} == PROJECT[spec.phase]
        assert isinstance(spec.loss, LossConfig)
    assert plan[4].averaging.enabled and plan[4].augmentation.enabled
    assert [p.lr for p in plan] == sorted((p.lr for p in plan), reverse=True)
