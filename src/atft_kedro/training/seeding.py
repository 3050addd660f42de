"""One seed for every random number generator, and RNG state capture/restore for resuming.

`seed_everything(seed)` seeds Python's `random`, NumPy's legacy global generator and torch (CPU and
CUDA), turns on deterministic algorithms and fixes the number of CPU threads, so that two runs with
the same seed on the same machine give identical numbers. `rng_state()` / `restore_rng_state()`
round-trip the three generators through plain Python types and tensors only, so a checkpoint holding
them loads with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def default_threads() -> int:
    """CPU threads used when none is configured: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def seed_everything(seed: int, threads: int | None = None, deterministic: bool = True) -> None:
    """Seed python/numpy/torch from one integer; fix CPU threads; prefer deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator, for third-party code
    torch.manual_seed(seed)
    torch.set_num_threads(threads or default_threads())
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """A NumPy generator that depends on (seed, epoch, stream) only: day order, augmentation."""
    return np.random.default_rng([int(seed), int(epoch), int(stream)])


def rng_state() -> dict[str, Any]:
    """The state of the python, numpy (legacy global) and torch generators, as plain types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),  # type: ignore[union-attr]  # numpy: a tuple with legacy=True
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back exactly as `rng_state()` saw them."""
    random.setstate(_as_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            np_state["kind"],
            np.asarray(np_state["keys"], dtype=np.int64).astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    """Lists back to tuples (random.setstate insists on tuples; some loaders give lists)."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value
