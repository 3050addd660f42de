"""atft_kedro: ATFT-GAT-FAN return prediction for Japanese equities as a Kedro project."""

import os

# Idle OpenMP threads sleep instead of spinning. When another process holds one of the cores,
# spinning threads stall each other at every parallel region and a training epoch takes many
# times its quiet time; passive, about its quiet time (benchmarks/busy_machine.py, figures in
# docs/results.md). OpenMP reads this when torch loads, so it is set before the first
# `import torch` of a Kedro run; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
