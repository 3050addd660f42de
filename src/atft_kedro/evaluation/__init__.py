"""Evaluation from the `predictions` table alone: metrics, backtest, bootstrap, baselines, report.

Domain code only (no Kedro). The `reporting` pipeline adapts these functions to the catalog.
"""
