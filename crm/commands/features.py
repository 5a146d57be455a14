"""``crm features build``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.apps import console, features_app, user_errors
from crm.config import config_option, job_config
from features.vocab import ENGINES


@features_app.command("build")
@user_errors
def build(
    ctx: typer.Context,
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    as_of: str = typer.Option(..., help="As-of date(s), comma-separated: YYYY-MM-DD[,YYYY-MM-DD...]."),
    out: Path = typer.Option(..., help="Folder for snapshot_as_of=DATE.parquet files and manifest.json."),
    # a plain string checked by the job's config, so a wrong engine gets the job's own sentence
    engine: str = typer.Option(
        "duckdb",
        metavar="[" + "|".join(ENGINES) + "]",
        help="duckdb (in-process) or spark (needs the \\[spark] extra).",
    ),
    spark_master: str = typer.Option("local[2]", help="Spark master URL when --engine spark."),
    online: bool = typer.Option(
        False, help="Also write the online snapshot for serving to OUT/online, as of the latest --as-of date."
    ),
    config: Path | None = config_option(),
) -> None:
    """Build point-in-time customer snapshots (only events before each as-of date count)."""
    from features.online import build_online_snapshot
    from features.snapshot import FeatureBuildConfig, run

    dates = as_of and [d.strip() for d in as_of.split(",") if d.strip()]  # None: from --config
    cfg = job_config(ctx, FeatureBuildConfig, as_of=dates)
    with console.status(f"building {len(cfg.as_of)} snapshot(s) with {cfg.engine}"):
        result = run(cfg)
    table = Table(title=f"snapshots in {cfg.out} ({result.seconds:.1f} s)")
    for col in ("as of", "customers", "file"):
        table.add_column(col)
    for day, (rows, path) in result.snapshots.items():
        table.add_row(day, f"{rows:,}", str(path))
    console.print(table)
    if online:
        path = build_online_snapshot(cfg.data, cfg.out / "online", as_of=max(result.snapshots))
        console.print(f"online snapshot written to {path}")
