"""benchmarks/bench_gpu.py runs on a machine that has only PyTorch (no Kedro, no polars)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run the benchmark with Kedro and polars made unimportable, as on a bare PyTorch image.
WITHOUT_KEDRO_OR_POLARS = """
import importlib.abc, runpy, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("kedro", "polars"):
            raise ImportError(f"{name} is not installed on this machine")
        return None

sys.meta_path.insert(0, Absent())
sys.argv = ["bench_gpu.py", "--small", "--repeats", "1", "--warmup", "1", "--days-per-step", "4"]
runpy.run_path(sys.argv_path, run_name="__main__")
"""


@pytest.mark.slow
def test_bench_gpu_runs_with_pytorch_alone():
    script = WITHOUT_KEDRO_OR_POLARS.replace(
        "sys.argv_path", repr(str(ROOT / "benchmarks" / "bench_gpu.py"))
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "samples/s per phase" in out and "losses finite: True" in out
    assert "modules outside the PyTorch stack imported: none" in out
    assert "warning:" not in out, out  # the real loop raises no warning (cuDNN's LSTM one included)
