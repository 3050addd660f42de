"""hpo pipeline: run this worker's trials, summarise the shared study, write the report.

Several workers (processes or machines) can run `kedro run --pipeline hpo` at once against one
study storage (`hpo.storage`); give each its own `--params hpo.worker=<i>` (sampler seed).
"""

from kedro.pipeline import Node, Pipeline

from atft_kedro.pipelines.hpo.nodes import hpo_report_node, optimise_node, summarise_study_node
from atft_kedro.pipelines.inputs import keywords

DATA = keywords(
    "model_input",
    "graph_edges",
    "splits",
    "params:training",
    "params:label",
    "params:hpo",
    "params:graph",
    "params:seed",
    "params:horizons",
    "params:seq_len",
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(optimise_node, inputs=DATA, outputs="hpo_study", name="optimise_node"),
            Node(
                summarise_study_node,
                inputs=keywords("hpo_study") | DATA,
                outputs=["hpo_trials", "hpo_best_params", "hpo_comparison"],
                name="summarise_study_node",
            ),
            Node(
                hpo_report_node,
                inputs=["hpo_trials", "hpo_comparison", "params:hpo", "params:seed"],
                outputs="hpo_report",
                name="hpo_report_node",
            ),
        ],
        tags=["hpo"],
    )
