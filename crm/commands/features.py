"""``crm features build``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.apps import console, features_app, user_errors


@features_app.command("build")
@user_errors
def build(
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    as_of: str = typer.Option(..., help="As-of date(s), comma-separated: YYYY-MM-DD[,YYYY-MM-DD...]."),
    out: Path = typer.Option(..., help="Folder for snapshot_as_of=DATE.parquet files and manifest.json."),
    engine: str = typer.Option("duckdb", help="duckdb (in-process) or spark (needs the [spark] extra)."),
    spark_master: str = typer.Option("local[2]", help="Spark master URL when --engine spark."),
    online: bool = typer.Option(False, help="Also write the online snapshot for serving to OUT/online."),
) -> None:
    """Build point-in-time customer snapshots (only events before each as-of date count)."""
    from features.online import build_online_snapshot
    from features.snapshot import FeatureBuildConfig, run

    dates = [d.strip() for d in as_of.split(",") if d.strip()]
    cfg = FeatureBuildConfig(data=data, as_of=dates, out=out, engine=engine, spark_master=spark_master)
    with console.status(f"building {len(dates)} snapshot(s) with {engine}"):
        result = run(cfg)
    table = Table(title=f"snapshots in {out} ({result.seconds:.1f} s)")
    for col in ("as of", "customers", "file"):
        table.add_column(col)
    for day, (rows, path) in result.snapshots.items():
        table.add_row(day, f"{rows:,}", str(path))
    console.print(table)
    if online:
        path = build_online_snapshot(data, out / "online")
        console.print(f"online snapshot written to {path}")
