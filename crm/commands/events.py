"""``crm events compact``: fold the service's event log into the data folder's Parquet events."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel, ConfigDict
from rich.table import Table

from crm.apps import app, console, user_errors
from crm.config import config_option, job_config

events_app = typer.Typer(help="The event log that POST /events writes.", no_args_is_help=True)
app.add_typer(events_app, name="events")


class CompactConfig(BaseModel):
    """What ``crm events compact`` folds: the log (default ``DATA/eventlog.sqlite``) into ``DATA``."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    event_log: Path | None = None


@events_app.command("compact")
@user_errors
def compact(
    ctx: typer.Context,
    data: Path = typer.Option(
        Path("out/demo/data"),
        envvar="CRM_DATA_DIR",
        help="Data folder whose events/ receives the log's events.",
    ),
    event_log: Path | None = typer.Option(
        None, envvar="CRM_EVENT_LOG", help="The event log (default DATA/eventlog.sqlite)."
    ),
    config: Path | None = config_option(),
) -> None:
    """Write the log's events since the last compaction as one Parquet part of DATA/events/ and
    validate the folder; later batch jobs read them from there (and the newer ones from the log)."""
    from features.compaction import compact as fold

    cfg = job_config(ctx, CompactConfig)
    with console.status(f"compacting the event log into {cfg.data / 'events'}"):
        result = fold(cfg.data, cfg.event_log)
    table = Table(title=f"event log compaction of {cfg.data}")
    for col in ("events", "through offset", "part"):
        table.add_column(col)
    table.add_row(f"{result.events:,}", f"{result.through:,}", str(result.path or "(nothing new)"))
    console.print(table)
