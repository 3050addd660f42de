"""Lineage and notebooks after one real `kedro run --env tiny`: `kedro viz build` exports every
registered pipeline's nodes, and each notebook under notebooks/ executes headless without error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbclient
import nbformat
import pytest

from atft_kedro.pipeline_registry import register_pipelines
from tests.e2e.conftest import KEDRO, ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAYERS = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)


def test_notebooks_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_data_tour.ipynb",
        "02_graph_explorer.ipynb",
        "03_model_report.ipynb",
    ]
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        code = [c for c in cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path.name


def test_kedro_viz_build_exports_every_registered_pipeline(tiny_run):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [KEDRO, "viz", "build"],
        cwd=tiny_run.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    api = tiny_run.path / "build" / "api"
    main = json.loads((api / "main").read_text())  # the graph of the default pipeline
    registered = register_pipelines()
    assert {p["id"] for p in main["pipelines"]} == set(registered)
    # each pipeline is a namespace: one collapsible group per pipeline
    assert {"data_processing", "graph", "training", "reporting"} <= set(main["modular_pipelines"])
    layers: set[str] = set()
    for name, pipeline in registered.items():
        exported = json.loads((api / "pipelines" / name).read_text())
        tasks = {n["name"] for n in exported["nodes"] if n["type"] == "task"}
        missing = {n.name.removeprefix(f"{n.namespace}.") for n in pipeline.nodes} - tasks
        assert not missing, f"kedro viz: pipeline {name} lacks nodes {sorted(missing)}"
        layers |= set(exported["layers"])
    assert layers <= set(LAYERS) and {"raw", "feature", "models", "reporting"} <= layers
    assert (tiny_run.path / "build" / "index.html").exists()  # the static site to publish


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless_on_the_catalog(tiny_run, notebook: Path, monkeypatch):
    # The kernel inherits these: the notebooks' bootstrap cell opens the project copy with them.
    monkeypatch.setenv("ATFT_PROJECT_PATH", str(tiny_run.path))
    monkeypatch.setenv("ATFT_KEDRO_ENV", "tiny")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    book = nbformat.read(notebook, as_version=4)
    # "python3" resolves to this interpreter (jupyter_client launches the kernel with sys.executable).
    client = nbclient.NotebookClient(
        book,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    ran = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in ran)
    errors = [o for c in ran for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the session started in notebooks/ tracked into the project's store, not a new one beside it
    assert not (ROOT / "notebooks" / "data").exists()
    assert (tiny_run.path / "data" / "09_tracking" / "mlflow.db").exists()
