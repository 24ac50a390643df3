"""What the commands share: exit codes, turning errors into one-line messages, store options.

Exit codes follow the usual convention: 0 success, 1 a failure (a job that failed, an unknown
id, a store that cannot be reached), 2 a usage error (a bad option value, an unknown job type,
arguments that don't fit the job), 3 a damaged store (a restart cannot help; the supervisor of
`offload worker --processes N` never restarts a child that exits 2 or 3). Errors are one line
on stderr, starting with "Error:".
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import ParamSpec, TypeVar

import click

from offload._errors import (
    ConfigurationError,
    InvalidArgumentsError,
    JobNotFoundError,
    OffloadError,
    StoreCorruptError,
    StoreError,
    UnknownJobError,
)
from offload._redact import mask_text
from offload.app._offload import Offload
from offload.cli._load import load_app
from offload.cli._output import safe_url
from offload.store import Store, verify_store
from offload.telemetry._logs import FORMATS, LOG_FORMAT_ENV, setup_logging
from offload.worker._supervisor import EXIT_DAMAGED, EXIT_USAGE

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., object])

EXIT_OK = 0
EXIT_FAILURE = 1


class Failure(click.ClickException):
    """Something went wrong that the command line was right to ask for: exit 1."""

    exit_code = EXIT_FAILURE


class UsageFailure(click.ClickException):
    """The command was asked for something that cannot be: exit 2, one line, no usage dump."""

    exit_code = EXIT_USAGE


class DamagedStore(click.ClickException):
    """The store's file is damaged: exit 3, one line naming the file and the damage."""

    exit_code = EXIT_DAMAGED


def _is_driver_error(exc: BaseException) -> bool:
    """An error of a database driver (sqlite3, psycopg): the store, not our code, failed."""
    if isinstance(exc, sqlite3.Error):
        return True
    return type(exc).__module__.split(".", 1)[0] in ("psycopg", "psycopg_pool")


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can cause into a one-line message and the right exit code,
    with any credential in it masked (a driver's message may quote the store URL).

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (UnknownJobError, InvalidArgumentsError, ConfigurationError) as exc:
            raise UsageFailure(mask_text(str(exc))) from exc
        except JobNotFoundError as exc:
            raise Failure(mask_text(str(exc))) from exc
        except StoreCorruptError as exc:
            raise DamagedStore(mask_text(str(exc))) from exc
        except (StoreError, OffloadError) as exc:
            raise Failure(mask_text(str(exc))) from exc
        except Exception as exc:
            if _is_driver_error(exc):
                raise Failure(mask_text(f"the store failed: {type(exc).__name__}: {exc}")) from exc
            raise

    return wrapper


URL_HELP = (
    "Store URL for this command (sqlite:///path.db, a file path, or postgresql://…), overriding "
    "the app's [default: the URL in the app's code, else $OFFLOAD_URL, else ./offload.db]"
)


def url_option(fn: F) -> F:
    """`--url`: this command's store, overriding the app's URL and `$OFFLOAD_URL`."""
    return click.option("--url", metavar="URL", help=URL_HELP)(fn)


def app_option(fn: F) -> F:
    """`--app module:attr`, optional: commands that only read the store need no job code."""
    return click.option(
        "--app",
        "app_path",
        metavar="MODULE:ATTR",
        help="Your application, for its store URL and settings (optional).",
    )(fn)


def json_option(fn: F) -> F:
    """`--json`: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def store_options(fn: F) -> F:
    """`--app` and `--url`, for the commands that work on the store directly."""
    return app_option(url_option(fn))


@contextmanager
def opened_app(
    app_path: str | None,
    url: str | None,
    *,
    require_schema: bool = True,
    auto_migrate: bool = True,
) -> Iterator[Offload]:
    """The user's app (`--app`) or a bare one on the URL, closed when the block ends.

    A bare app never creates or migrates a store: reading commands pointed at the wrong place
    say so instead of showing an empty, freshly created database. The user's app migrates on
    first use if its settings say so, unless `auto_migrate` is False (`offload migrate`).
    """
    app = load_app(app_path, url) if app_path else load_app(None, url, auto_migrate=False)
    if not auto_migrate and app.config.auto_migrate:
        app.config = replace(app.config, auto_migrate=False)
    try:
        verify_store(app.config.url)  # a damaged file: one line and exit 3, before any write
        if require_schema:
            check_store(app)
        yield app
    finally:
        app.close()


_WHICH_STORE = (
    "Name your app's store with --app myapp:app (it uses the URL in your code), --url URL or "
    "$OFFLOAD_URL"
)


def check_store(app: Offload) -> Store:
    """The app's store, or a Failure when there is no offload schema at its URL."""
    where = safe_url(app.config.url)
    store = app.store
    if not store.exists():
        raise Failure(
            f"no store at {where}: there is no database there yet. {_WHICH_STORE}; "
            "`offload migrate` creates one"
        )
    if store.schema_version() == 0:
        raise Failure(
            f"the store at {where} has no offload tables. {_WHICH_STORE}; `offload migrate` "
            "creates them, and so does a worker"
        )
    return store


def _log_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Remember the chosen log format for the command (and the worker processes it starts);
    json takes effect at once, so that a command that sets up no logging of its own logs
    its warnings as JSON too."""
    if value is None:
        return
    os.environ[LOG_FORMAT_ENV] = value
    if value == "json":
        setup_logging(logging.WARNING)


def log_format_option() -> click.Option:
    """`--log-format text|json` (or $OFFLOAD_LOG_FORMAT), on every command (docs/logging.md)."""
    return click.Option(
        ["--log-format"],
        type=click.Choice(FORMATS),
        envvar=LOG_FORMAT_ENV,
        expose_value=False,
        is_eager=True,
        callback=_log_format,
        help="Log lines as text (default) or json, one object a line [env: OFFLOAD_LOG_FORMAT].",
    )


def add_log_format(command: click.Command) -> None:
    """Give `command` (and, for a group, each of its subcommands) the --log-format option."""
    if not any(p.name == "log_format" for p in command.params):
        command.params.append(log_format_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_log_format(sub)


def configure_logging(level: int) -> None:
    """Log to stderr at `level`, as text or JSON as --log-format says (telemetry/_logs.py)."""
    setup_logging(level)
