"""Predictions of trained checkpoints, in the `predictions` contract (docs/contracts.md).

Imports go down: this package reads what `atft_kedro.training` wrote (checkpoints, the model's
input columns) and uses `atft_kedro.evaluation.interpretation` for the model's own interpretation;
neither imports it. The reporting and predict pipelines and the HPO objective call it.
"""
