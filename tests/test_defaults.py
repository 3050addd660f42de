"""One source of defaults: every dataclass a parameter block is parsed into has the defaults of
conf/base, so the Python API without Kedro (notebooks, benchmarks) runs what `kedro run` runs."""

from pathlib import Path

import pytest
import yaml

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
from atft_kedro.training.fold_training import ScalerConfig, model_config
from atft_kedro.training.trainer import LoopConfig

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
        ("training (loop)", lambda: LoopConfig.from_params(TRAINING), LoopConfig),
        ("training.loader", lambda: LoaderConfig.from_params(TRAINING["loader"]), LoaderConfig),
        ("training.scaler", lambda: from_block(ScalerConfig, TRAINING["scaler"], "s"), ScalerConfig),
        ("features", lambda: FeaturesConfig.from_params(PARAMS["features"]), FeaturesConfig),
        ("splits", lambda: SplitsConfig.from_params(PARAMS["splits"]), SplitsConfig),
        ("predict", lambda: PredictConfig.from_params(PARAMS["predict"]), PredictConfig),
        ("universe", lambda: UniverseConfig.from_params(PARAMS["universe"]), UniverseConfig),
        ("graph", lambda: GraphConfig.from_params(PARAMS["graph"]), GraphConfig),
        ("reporting", lambda: EvaluationConfig.from_params(PARAMS["reporting"], 0), EvaluationConfig),
        ("reporting.book", lambda: BookConfig.from_params(PARAMS["reporting"]["book"]), BookConfig),
        ("hpo", lambda: HPOConfig.from_params(PARAMS["hpo"]),
         lambda: HPOConfig(search_space=PARAMS["hpo"]["search_space"])),
        ("training.model", lambda: model_config(TRAINING["model"], 8, PARAMS["horizons"]),
         lambda: ModelConfig(n_features=8, horizons=tuple(PARAMS["horizons"]))),
    ],
)  # fmt: skip
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
    with pytest.raises(ParameterError, match=r"training: unknown key\(s\) \['warmup_steps'\]"):
        LoopConfig.from_params({**TRAINING, "warmup_steps": 10})  # belongs under `schedule`


def test_an_unknown_reporting_key_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"reporting: unknown key\(s\) \['cost'\]"):
        EvaluationConfig.from_params({**PARAMS["reporting"], "cost": 5.0}, 0)
