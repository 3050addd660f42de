"""Search space: wildcard and scale paths, list choices, the pasteable fragment, defaults."""

import optuna
import pytest

from atft_kedro.hpo.search_space import (
    apply_values,
    best_fragment,
    default_values,
    parse_space,
    suggest,
)

TRAINING = {
    "model": {"hidden": 32, "fan": {"windows": [5, 10, 20]}},
    "phases": {0: {"lr": 1e-3, "loss": {"rank_weight": 0.1}}, "1": {"lr": 5e-4, "loss": {}}},
}
SPACE = {
    "lr_scale": {"path": "phases.*.lr", "type": "float", "low": 0.5, "high": 2.0, "mode": "scale"},
    "hidden": {"path": "model.hidden", "type": "categorical", "choices": [16, 32]},
    "windows": {"path": "model.fan.windows", "type": "categorical", "choices": [[5, 10, 20], [5]]},
    "k": {"path": "graph.k", "type": "int", "low": 5, "high": 20, "step": 5},
}


def test_apply_scales_every_phase_and_sets_lists():
    dims = parse_space(SPACE)
    out = apply_values(TRAINING, dims, {"lr_scale": 2.0, "hidden": 16, "windows": [5], "k": 10})
    assert out["phases"]["0"]["lr"] == pytest.approx(2e-3)
    assert out["phases"]["1"]["lr"] == pytest.approx(1e-3)
    assert out["model"] == {"hidden": 16, "fan": {"windows": [5]}}
    assert TRAINING["model"]["hidden"] == 32  # input untouched


def test_fragment_holds_only_searched_settings():
    dims = parse_space(SPACE)
    frag = best_fragment(TRAINING, dims, {"lr_scale": 0.5, "hidden": 16, "windows": [5], "k": 10})
    assert frag == {
        "training": {
            "phases": {"0": {"lr": 5e-4}, "1": {"lr": 2.5e-4}},
            "model": {"hidden": 16, "fan": {"windows": [5]}},
        },
        "graph": {"k": 10},
    }


def test_defaults_and_suggest_round_trip_list_choices():
    dims = parse_space(SPACE)
    defaults = default_values(TRAINING, {"k": 20}, dims)
    assert defaults == {"lr_scale": 1.0, "hidden": 32, "windows": [5, 10, 20], "k": 20}
    assert default_values(TRAINING, {"k": 25}, dims) is None  # outside the searched range
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial({d.name: d.encode(defaults[d.name]) for d in dims})
    assert suggest(study.ask(), dims) == defaults


def test_bad_dimension_is_a_one_line_error():
    with pytest.raises(ValueError, match="hpo.search_space.x: a float dimension needs"):
        parse_space({"x": {"path": "model.dropout", "type": "float"}})
