"""End-to-end fixtures: a throw-away copy of the project in which `kedro run` really runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEDRO = str(Path(sys.executable).with_name("kedro"))


class KedroProject:
    """A copy of pyproject.toml + conf/ with an empty data/ tree; `run` calls the real CLI."""

    def __init__(self, path: Path):
        self.path = path
        shutil.copy(ROOT / "pyproject.toml", path / "pyproject.toml")
        shutil.copy(ROOT / ".telemetry", path / ".telemetry")
        shutil.copytree(ROOT / "conf", path / "conf", ignore=shutil.ignore_patterns("local"))
        (path / "conf" / "local").mkdir()
        (path / "src").mkdir()  # Kedro checks that source_dir exists; the package is installed
        for layer in (ROOT / "data").iterdir():
            if layer.is_dir():
                (path / "data" / layer.name).mkdir(parents=True)

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
        return subprocess.run(
            [KEDRO, "run", "--env", "tiny", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory) -> KedroProject:
    return KedroProject(tmp_path_factory.mktemp("project"))


# A smaller synthetic market than `tiny` (fewer codes and sessions): quick to build and train.
SMALL_MARKET = "market.synthetic.overrides.n_codes=24,market.synthetic.overrides.n_days=230"
# Short run: the small market and phase 0 only (the reporting pipeline evaluates whichever phases
# were trained), fewer bootstrap resamples.
RUN_PARAMS = f"{SMALL_MARKET},phase=0,reporting.n_boot=200"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> KedroProject:
    """A project copy after one `kedro run --env tiny` of the default pipelines, end to end."""
    project = KedroProject(tmp_path_factory.mktemp("tiny_run"))
    result = project.run("--params", RUN_PARAMS)
    assert result.returncode == 0, result.stderr[-3000:]
    return project
