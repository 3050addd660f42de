"""Project CLI: Kedro's `run`, with user errors reported in one line.

Registered as a Kedro project-command plugin (`kedro.project_commands` in pyproject.toml), so
`kedro run` and `python -m atft_kedro` use this `run` instead of the built-in one; it is an adapter
like the nodes, so it lives beside them and the domain packages stay free of Kedro. `run`
takes every option of Kedro's `run` plus `--traceback`. An error caused by the user's input
(`atft_kedro.errors.UserError`: bad raw data, an unknown parameter, an unreadable file, a phase
whose prerequisite checkpoint is missing; or a Kedro `DatasetError`, e.g. a catalog file that a
previous pipeline has not written) prints `error: <message>` on stderr and exits with status 2.
Anything else is a bug and keeps its traceback, as does every error with `--traceback`.
"""

from __future__ import annotations

import logging
import sys

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from atft_kedro.errors import UserError, one_line

USER_ERROR_EXIT = 2
# MLflow logs creating its database (first run of a project) on stderr, beside the one-line error
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def user_error(exc: BaseException) -> BaseException | None:
    """The user error in `exc`'s chain of causes (the innermost UserError first), or None."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return next((e for e in chain if isinstance(e, UserError)), None) or next(
        (e for e in chain if isinstance(e, DatasetError)), None
    )


@click.group(name="atft_kedro")
def cli() -> None:
    """Project commands (override Kedro's built-in ones of the same name)."""


@cli.command(name="run", params=[*kedro_run.params], help=kedro_run.help)
@click.option(
    "--traceback", "show_traceback", is_flag=True, help="Show the full traceback of an error."
)
def run(show_traceback: bool, **kwargs) -> None:
    assert kedro_run.callback is not None  # Kedro's `run` command is a function
    try:
        kedro_run.callback(**kwargs)
    except Exception as exc:
        found = None if show_traceback else user_error(exc)
        if found is None:
            raise
        click.echo(f"error: {one_line(found)} (kedro run --traceback shows where)", err=True)
        sys.exit(USER_ERROR_EXIT)
