"""Comparing two `last` checkpoints: everything a resumed run must carry over, bit for bit."""

from __future__ import annotations

from typing import Any

import torch

#: per-epoch metrics that measure the machine, not the model
TIMING = {"seconds", "train_seconds", "samples_per_s", "peak_rss_mib"}

#: what a `last` checkpoint holds to continue a phase (trainer._checkpoint) and what it is; in
#: the order compared, so that a failure names the state lost rather than the weights it changed
RESUMED_STATE = {
    "early_stopping": "early stopping",
    "global_step": "step counter",
    "rng_state": "random number generators",
    "loss_state": "Sharpe EMA moments",
    "averaged_state": "SWA/EMA weight average",
    "scheduler_state": "learning-rate schedule",
    "optimizer_state": "AdamW moments",
    "model_state": "raw weights",
    "history": "metrics history",
}


def without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in epoch.items() if k not in TIMING} for epoch in history]


def assert_same(a: Any, b: Any, where: str) -> None:
    """Equal nested dicts / lists / tuples / tensors (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where}: differs (max |Δ| {(a - b).abs().max():.3g})"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_training_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two `last` checkpoints of the same epoch hold the same state to continue from."""
    assert a["epoch"] == b["epoch"], f"last after epoch {a['epoch']} and {b['epoch']}"
    for key, meaning in RESUMED_STATE.items():
        x, y = a[key], b[key]
        if key == "history":
            x, y = without_timing(x), without_timing(y)
        assert_same(x, y, f"{key} ({meaning})")
