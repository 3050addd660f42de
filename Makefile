# Two commands for a newcomer: `make run` (install + run everything on the synthetic market) and
# `make test` (install + run the test suite). Both create/reuse .venv and are fast when installed.
# `make lint` runs ruff and the type checker (mypy); CI (.ci/run) runs it before the tests.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Kedro's telemetry is off for every make target (the repository also carries a .telemetry file).
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: install run test lint format benchmarks clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency declarations change. torch is pinned to the 2.13.0 CPU build in
# pyproject.toml and requirements.lock, so no install path can pull the multi-GB CUDA build.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,jquants]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/kedro run

test: install
	$(BIN)/pytest

# mypy reads its settings and the files it checks from pyproject.toml ([tool.mypy]).
lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

benchmarks: install
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_graph.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_loader.py

# Pipeline outputs only: the tracked runs in data/09_tracking stay (they are the history to compare).
clean-data:
	find data -path data/09_tracking -prune -o -type f ! -name .gitkeep -exec rm -f {} +
