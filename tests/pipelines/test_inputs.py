import inspect

from atft_kedro.pipeline_registry import register_pipelines
from atft_kedro.pipelines.inputs import keywords


def test_keywords_names_arguments_after_datasets():
    assert keywords("model_input", "params:seed") == {
        "model_input": "model_input",
        "seed": "params:seed",
    }


def test_nodes_with_many_inputs_take_them_by_keyword():
    nodes = {n for pipeline in register_pipelines().values() for n in pipeline.nodes}
    for node in nodes:
        parameters = inspect.signature(node.func).parameters.values()
        positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert len(positional) <= 6, f"{node.name}: {len(positional)} positional inputs"
