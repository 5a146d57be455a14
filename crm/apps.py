"""The typer applications that command modules register on (kept apart to avoid import cycles),
the root options (``--verbose``, ``--version``) and the console every command prints to."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="crm",
    help="Churn and cross-sell recommendation service for a consumer-electronics CRM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # the groups and commands inherit it
)
data_app = typer.Typer(help="Generate, import and validate behaviour logs.", no_args_is_help=True)
features_app = typer.Typer(help="Build point-in-time customer snapshots.", no_args_is_help=True)
train_app = typer.Typer(help="Train, tune, track and register models.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(train_app, name="train")


# The project's own modules: their warnings are meant for the user and stay on.
OWN_MODULES = r"(crm|features|training|serving)(\.|$)"
# Libraries whose logs are chatter in a command's output: their warnings go too, errors stay.
THIRD_PARTY_LOGGERS = ("mlflow", "alembic", "optuna", "bentoml", "urllib3", "httpx", "git", "py4j")
# Read by MLflow when it is imported or downloads artifacts; a value the user set is kept.
QUIET_ENVIRONMENT = {"MLFLOW_LOGGING_LEVEL": "ERROR", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class PlainStatus:
    """What :meth:`CommandConsole.status` gives where output is not a terminal: each new message
    is one plain line (with the seconds since the step began), so a log shows a long step moving."""

    def __init__(self, console: Console, status: str) -> None:
        self.console = console
        self.start = time.perf_counter()
        self.last: str | None = None
        self.update(status)

    def update(self, status: str | None = None, **_: Any) -> None:
        """Print ``status`` as a line, unless it repeats the previous one."""
        if status is None or str(status) == self.last:
            return
        self.last = str(status)
        elapsed = time.perf_counter() - self.start
        self.console.print(f"  {self.last} ({elapsed:.0f} s)", markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> PlainStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class CommandConsole(Console):
    """The commands' console: a spinner on a terminal, plain progress lines anywhere else (rich
    already leaves out colours and cursor codes there)."""

    def status(self, status: Any, **kwargs: Any) -> Any:  # noqa: D102 - rich's, on a terminal
        if self.is_terminal:
            return super().status(status, **kwargs)
        return PlainStatus(self, status)


console = CommandConsole(stderr=True)


@contextlib.contextmanager
def third_party_output(verbose: bool) -> Iterator[None]:
    """While a command runs: without ``verbose``, other libraries' warnings and every INFO log
    off (and MLflow's download bars); with it, their warnings (deprecations too) and INFO logs on.
    Everything is put back when the command ends, for a caller in the same process (the tests)."""
    disabled = logging.root.manager.disable
    loggers = {name: logging.getLogger(name) for name in THIRD_PARTY_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    environ = {key: os.environ.get(key) for key in QUIET_ENVIRONMENT}
    root_level, handler = logging.root.level, logging.StreamHandler()
    with warnings.catch_warnings():
        if verbose:
            warnings.simplefilter("default")
            logging.root.setLevel(logging.INFO)
            logging.root.addHandler(handler)
        else:
            warnings.filterwarnings("ignore")
            warnings.filterwarnings("default", module=OWN_MODULES)
            logging.disable(logging.INFO)
            for logger in loggers.values():
                logger.setLevel(logging.ERROR)
            for key, value in QUIET_ENVIRONMENT.items():
                os.environ.setdefault(key, value)
        try:
            yield
        finally:
            logging.disable(disabled)
            logging.root.setLevel(root_level)
            logging.root.removeHandler(handler)
            for name, logger in loggers.items():
                logger.setLevel(levels[name])
            for key, value in environ.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def show_version(value: bool) -> None:
    """``crm --version``: the installed package's version."""
    if value:
        from importlib.metadata import version

        typer.echo(f"crm {version('crm-ml')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show other libraries' warnings and INFO logs (off by default)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=show_version, help="Print the version and exit."
    ),
) -> None:
    """Churn and cross-sell recommendation service for a consumer-electronics CRM."""
    ctx.with_resource(third_party_output(verbose))


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a :class:`UserError` as one red sentence and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from features.errors import UserError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            sys.exit(130)

    return wrapper
