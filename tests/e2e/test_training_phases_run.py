"""`kedro run` of phases 0 → 4 on the small market, through the real CLI: each phase writes its
best / last checkpoints and its metrics record, starts from the previous phase's best and runs the
modules its parameters switch on."""

from __future__ import annotations

import json

import pytest
import torch
from kedro.config import OmegaConfigLoader

from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.settings import CONFIG_LOADER_ARGS
from tests.e2e.conftest import SMALL_MARKET

pytestmark = pytest.mark.slow

PHASES = range(5)
SWITCHES = ("use_fan", "use_san", "use_gat")


def phase_blocks(project) -> dict[str, dict]:
    """`training.phases` as the run read it: conf/base with the tiny environment over it."""
    loader = OmegaConfigLoader(str(project.path / "conf"), env="tiny", **CONFIG_LOADER_ARGS)
    return loader["parameters"]["training"]["phases"]


def frozen_parameters(state: dict, trainable: list[str]) -> list[str]:
    """Names of the weights (not buffers) of the sub-modules that did not learn in a phase."""
    model = ATFTGATFAN(ModelConfig.from_dict(state["model_config"]))
    return [n for n, _ in model.named_parameters() if n.split(".")[0] not in trainable]


def test_phases_0_to_4_run_in_order_through_the_cli(kedro_project):
    # one torch thread: on a busy two-core machine two threads made an epoch 60 times slower
    params = f"{SMALL_MARKET},phase=all,training.threads=1"
    result = kedro_project.run("--pipelines", "data_processing,graph,training", "--params", params)
    assert result.returncode == 0, result.stderr[-3000:]

    data = kedro_project.path / "data"
    checkpoints = data / "06_models" / "checkpoints" / "fold0"
    metrics = data / "08_reporting" / "training_metrics"
    blocks = phase_blocks(kedro_project)
    assert sorted(p.name for p in metrics.glob("*.json")) == [
        f"fold0_phase{p}.json" for p in PHASES
    ]
    previous, frozen_checked = None, 0
    for phase in PHASES:
        best, last = (checkpoints / f"phase{phase}" / f"{kind}.pt" for kind in ("best", "last"))
        assert best.is_file() and last.is_file(), phase
        record = json.loads((metrics / f"fold0_phase{phase}.json").read_text())
        block = blocks[str(phase)]
        assert record["phase"] == phase and record["name"] == block["name"]
        assert len(record["epochs"]) == block["epochs"]  # the tiny environment's epochs

        # the modules the phase switched on are the ones its parameters name, in the record and
        # in the model its checkpoints hold
        want = {key: bool(block.get(key, False)) for key in SWITCHES}
        assert record["modules"] == want, phase
        state = torch.load(best, weights_only=True)
        assert {key: state["model_config"][key] for key in SWITCHES} == want, phase
        assert state["phase"] == phase and state["fold"] == 0

        # phase n starts from phase n-1's best: the record says so, and the weights of what did
        # not learn in phase n are phase n-1's best weights, bit for bit
        if previous is None:
            assert record["started_from"] == "random initialisation (seeded)"
        else:
            started = kedro_project.path / record["started_from"]
            assert started.resolve() == (checkpoints / f"phase{phase - 1}" / "best.pt").resolve()
            frozen = frozen_parameters(state, record["trainable"])
            for name in frozen:
                assert torch.equal(state["model_state"][name], previous[name]), (phase, name)
            frozen_checked += len(frozen)
            learnt = [n for n in previous if n.split(".")[0] in record["trainable"]]
            assert any(not torch.equal(state["model_state"][n], previous[n]) for n in learnt)
        previous = state["model_state"]
    assert frozen_checked  # (phase 1 runs without GAT, at least: its weights wait for phase 2)
