from atft_kedro.pipelines.tracking import run_name


def test_a_run_is_named_after_what_it_ran():
    synthetic = {"market": {"source": "synthetic", "preset": "small"}, "seed": 7, "phase": 3}
    assert run_name(None, synthetic) == "__default__ | synthetic small | seed 7 | phase 3"
    assert run_name("training", synthetic) == "training | synthetic small | seed 7 | phase 3"
    real = {"market": {"source": "jquants"}, "seed": 42, "phase": "all"}
    assert run_name("predict", real) == "predict | jquants | seed 42"  # no training, no phase
