"""One source of defaults: a parameter block becomes a dataclass, and unknown keys are errors.

Each block of ``conf/base/parameters_*.yml`` that a domain module reads has a dataclass whose field
defaults equal the conf's values (``tests/test_defaults.py`` checks it), so the Python API used
without Kedro (notebooks, benchmarks) trains and evaluates what ``kedro run`` does.

``from_block`` is the one builder, for flat and nested blocks alike, read from the field types:

* a field typed as a dataclass takes a sub-block (``training.model.fan``);
* a field typed ``dict[K, V]`` converts each key to ``K``, and with ``V`` a dataclass builds one
  ``V`` per key (``training.phases``); a field of ``V`` marked ``metadata=KEY`` takes that key;
* a field typed as a tuple takes a YAML list;
* a key renamed in ``RENAMED`` (a class attribute, old → new name) still works for one release and
  logs a deprecation warning once.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from atft_kedro.errors import ParameterError

T = TypeVar("T")
log = logging.getLogger(__name__)

#: field metadata: the field takes the key its block sits under in a ``dict[K, V]`` field
KEY = {"key": True}

_WARNED: set[str] = set()


def from_block(cls: type[T], params: Mapping[str, Any] | None, name: str, key: Any = None) -> T:
    """``cls(**params)`` with sub-blocks built as their field types say; a key ``cls`` does not
    have is a one-line ParameterError naming the block, and a key the block leaves out takes the
    dataclass default. ``key``: the value of the fields marked ``KEY``."""
    params = _renamed(cls, dict(params or {}), name)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    keyed = [f.name for f in fields if f.metadata.get("key")]
    known = sorted(f.name for f in fields if f.name not in keyed)
    unknown = sorted(set(params) - set(known), key=str)
    if unknown:
        raise ParameterError(f"{name}: unknown key(s) {unknown}; known: {known}")
    hints = typing.get_type_hints(cls)
    values = {k: _value(hints[k], v, f"{name}.{k}") for k, v in params.items()}
    return cls(**values, **dict.fromkeys(keyed, key))


def _value(hint: Any, value: Any, name: str) -> Any:
    """``value`` as a field typed ``hint`` holds it (sub-blocks built, lists to tuples)."""
    hint = _without_none(hint)
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_block(hint, value, name)
    if origin is dict and isinstance(value, Mapping):
        key_type, item_type = typing.get_args(hint) or (Any, Any)
        convert = key_type if isinstance(key_type, type) else (lambda k: k)
        if isinstance(item_type, type) and dataclasses.is_dataclass(item_type):
            return {
                convert(k): from_block(item_type, v, f"{name}.{k}", convert(k))
                for k, v in value.items()
            }
        return {convert(k): v for k, v in value.items()}
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _without_none(hint: Any) -> Any:
    """``X`` for ``X | None`` (the type a present value has), else ``hint``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, _UnionType) and len(args) == 1:
        return args[0]
    return hint


_UnionType = type(int | None)


def _renamed(cls: type, params: dict[str, Any], name: str) -> dict[str, Any]:
    """``params`` with renamed keys under their new names (a deprecation warning once each)."""
    for old, new in getattr(cls, "RENAMED", {}).items():
        if old not in params:
            continue
        if new in params:
            raise ParameterError(f"{name}: both {old} and {new} are set; keep {new} only")
        if f"{name}.{old}" not in _WARNED:
            _WARNED.add(f"{name}.{old}")
            log.warning(
                "%s.%s is deprecated and will be removed in the next release: it is now "
                "%s.%s (same meaning and unit)",
                name,
                old,
                name,
                new,
            )
        params[new] = params.pop(old)
    return params
