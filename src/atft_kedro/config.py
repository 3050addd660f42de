"""One source of defaults: a parameter block becomes a dataclass, and unknown keys are errors.

Each block of ``conf/base/parameters_*.yml`` that a domain module reads has a dataclass whose field
defaults equal the conf's values (``tests/test_defaults.py`` checks it), so the Python API used
without Kedro (notebooks, benchmarks) trains and evaluates what ``kedro run`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from atft_kedro.errors import ParameterError

T = TypeVar("T")


def from_block(cls: type[T], params: Mapping[str, Any] | None, name: str) -> T:
    """``cls(**params)``; a key ``cls`` does not have is a one-line ParameterError naming the
    block, and a key the block leaves out takes the dataclass default."""
    params = dict(params or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParameterError(f"{name}: unknown key(s) {unknown}; known: {sorted(known)}")
    return cls(**params)
