"""Kedro pipelines: thin wiring over the domain packages."""
