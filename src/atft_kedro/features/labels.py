"""The target views and the label: which return a learner fits and a headline scores.

Kept apart from ``features.targets`` (which computes the columns with polars) so that the training
code, which only needs the names, imports without polars (``benchmarks/bench_gpu.py`` runs on a
machine that has only PyTorch).
"""

from __future__ import annotations

from atft_kedro.errors import ParameterError

#: view name -> (column prefix, entry/exit price, sessions between the signal and the entry)
VIEWS = {
    "close": ("target", "close", 0),
    "next_close": ("target_next", "close", 1),
    "next_open": ("target_open", "open", 1),
}


#: the label every learner fits and the headline scores, unless the `label` parameter says otherwise
DEFAULT_LABEL = "next_close"


def check_label(label: str) -> str:
    """``label`` if it is a view of ``VIEWS``; else a one-line ParameterError."""
    if label not in VIEWS:
        raise ParameterError(f"label: {label!r} is not a target view; choose from {list(VIEWS)}")
    return label


def target_name(h: int, view: str = "close") -> str:
    """Column of the ``view`` target at horizon h: ``target_1d``, ``target_next_1d``, ..."""
    return f"{VIEWS[view][0]}_{h}d"
