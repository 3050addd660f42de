"""One source of defaults: every dataclass a parameter block is parsed into has the defaults of
conf/base, so the Python API without Kedro (notebooks, benchmarks) runs what `kedro run` runs."""

import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from atft_kedro import config
from atft_kedro.config import from_block
from atft_kedro.errors import ParameterError
from atft_kedro.evaluation.evaluate import EvaluationConfig
from atft_kedro.evaluation.turnover import BookConfig
from atft_kedro.features.build import FeaturesConfig
from atft_kedro.features.universe import UniverseConfig
from atft_kedro.graph import GraphConfig
from atft_kedro.hpo.search import HPOConfig
from atft_kedro.inference.predict import PredictConfig
from atft_kedro.loader.datasets import LoaderConfig
from atft_kedro.loader.splits import SplitsConfig
from atft_kedro.model.config import ModelConfig
from atft_kedro.training.config import ScalerConfig, ScheduleConfig, TrainingConfig

CONF = Path(__file__).parents[1] / "conf" / "base"


def _params() -> dict:
    out: dict = {}
    for path in sorted(CONF.glob("parameters*.yml")):
        out |= yaml.safe_load(path.read_text()) or {}
    return out


PARAMS = _params()
TRAINING = PARAMS["training"]


@pytest.mark.parametrize(
    ("name", "parsed", "default"),
    [
        (
            "training (all but the phases)",
            lambda: dataclasses.replace(
                TrainingConfig.from_params(
                    TRAINING, label=PARAMS["label"], horizons=PARAMS["horizons"]
                ),
                phases={},
            ),
            TrainingConfig,
        ),
        ("training.loader", lambda: LoaderConfig.from_params(TRAINING["loader"]), LoaderConfig),
        (
            "training.scaler",
            lambda: from_block(ScalerConfig, TRAINING["scaler"], "s"),
            ScalerConfig,
        ),
        ("features", lambda: FeaturesConfig.from_params(PARAMS["features"]), FeaturesConfig),
        ("splits", lambda: SplitsConfig.from_params(PARAMS["splits"]), SplitsConfig),
        ("predict", lambda: PredictConfig.from_params(PARAMS["predict"]), PredictConfig),
        ("universe", lambda: UniverseConfig.from_params(PARAMS["universe"]), UniverseConfig),
        ("graph", lambda: GraphConfig.from_params(PARAMS["graph"]), GraphConfig),
        (
            "reporting",
            lambda: EvaluationConfig.from_params(PARAMS["reporting"], 0),
            EvaluationConfig,
        ),
        ("reporting.book", lambda: BookConfig.from_params(PARAMS["reporting"]["book"]), BookConfig),
        (
            "hpo",
            lambda: HPOConfig.from_params(PARAMS["hpo"]),
            lambda: HPOConfig(search_space=PARAMS["hpo"]["search_space"]),
        ),
        (
            "training.model",
            lambda: TrainingConfig.from_params(TRAINING).model.with_inputs(8),
            lambda: ModelConfig(n_features=8, horizons=tuple(PARAMS["horizons"])),
        ),
    ],
)
def test_dataclass_defaults_equal_conf_base(name, parsed, default):
    assert parsed() == default(), f"{name}: the dataclass defaults differ from conf/base"


def test_unknown_keys_are_one_line_parameter_errors():
    with pytest.raises(
        ParameterError, match=r"training.loader: unknown key\(s\) \['implementaton'\]"
    ):
        LoaderConfig.from_params({"implementaton": "streaming"})
    with pytest.raises(ParameterError, match="training.scaler"):
        from_block(ScalerConfig, {"clip": 5.0, "reservoir": 10}, "training.scaler")


def test_an_unknown_training_key_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"training: unknown key\(s\) \['warmup_days'\]"):
        TrainingConfig.from_params({**TRAINING, "warmup_days": 10})  # belongs under `schedule`
    with pytest.raises(ParameterError, match=r"training.schedule: unknown key\(s\) \['warmup'\]"):
        TrainingConfig.from_params({**TRAINING, "schedule": {"warmup": 10}})
    with pytest.raises(ParameterError, match=r"training.model.gat: unknown key\(s\) \['head'\]"):
        TrainingConfig.from_params({**TRAINING, "model": {"gat": {"head": 2}}})


def test_warmup_steps_still_works_for_a_release_and_warns_once(caplog, monkeypatch):
    """`schedule.warmup_steps` is now `warmup_days` (it always counted trading days)."""
    monkeypatch.setattr(config, "_WARNED", set())  # as in a fresh process
    old = {**TRAINING, "schedule": {"warmup_steps": 20}}
    with caplog.at_level(logging.WARNING, logger="atft_kedro.config"):
        first = TrainingConfig.from_params(old)
        second = TrainingConfig.from_params(old)
    assert first.schedule == second.schedule == ScheduleConfig(warmup_days=20)
    warned = [r.getMessage() for r in caplog.records if "warmup_steps" in r.getMessage()]
    assert len(warned) == 1 and "training.schedule.warmup_days" in warned[0]
    with pytest.raises(ParameterError, match="both warmup_steps and warmup_days"):
        TrainingConfig.from_params({"schedule": {"warmup_steps": 5, "warmup_days": 5}})


def test_an_unknown_reporting_key_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"reporting: unknown key\(s\) \['cost'\]"):
        EvaluationConfig.from_params({**PARAMS["reporting"], "cost": 5.0}, 0)
