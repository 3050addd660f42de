"""Errors caused by what the user gave us (data, parameters, files, run order), not by a bug.

`kedro run` prints such an error as one line and exits with status 2; `kedro run --traceback`
shows the traceback as well (`atft_kedro.pipelines.cli`). Each subclass also derives from the built-in
exception a caller would expect (ValueError, FileNotFoundError, OSError).
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: the message alone tells the user what to fix."""


class ParameterError(UserError, ValueError):
    """A parameter block has an unknown key or a value outside its domain."""


class UnreadableFileError(UserError, OSError):
    """A file exists but cannot be read as what it should be (truncated, wrong format)."""

    def __init__(self, path: object, reason: object):
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path


def one_line(exc: BaseException | str) -> str:
    """A message on one line (Kedro's dataset errors and polars' span several)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
