"""The typer applications that command modules register on (kept apart to avoid import cycles)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="crm",
    help="Churn and cross-sell recommendation service for a consumer-electronics CRM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Generate, import and validate behaviour logs.", no_args_is_help=True)
features_app = typer.Typer(help="Build point-in-time customer snapshots.", no_args_is_help=True)
train_app = typer.Typer(help="Train, tune, track and register models.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(train_app, name="train")

console = Console(stderr=True)


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
