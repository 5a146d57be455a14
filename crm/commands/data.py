"""``crm data synth|import|validate``."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from crm.apps import console, data_app, user_errors
from crm.config import config_option, job_config
from features.vocab import Dataset, Preset


class ValidateConfig(BaseModel):
    """What ``crm data validate`` checks."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    max_reject_share: float = Field(0.05, ge=0.0, le=1.0)


@data_app.command("synth")
@user_errors
def synth(
    ctx: typer.Context,
    preset: Preset = typer.Option("tiny", help="Size: tiny (~2k customers), demo (~50k), large (~1M)."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives identical files."),
    out: Path = typer.Option(..., help="Folder to write events/, customers, items and truth/ into."),
    config: Path | None = config_option(),
) -> None:
    """Simulate the brand's customers and write them in the input contract, with ground truth."""
    from features.synth import SynthConfig, run

    cfg = job_config(ctx, SynthConfig)
    result = run(cfg, progress=True)
    table = Table(title=f"synthetic data ({cfg.preset}, seed {cfg.seed})")
    for col in ("table", "rows", "path"):
        table.add_column(col)
    for name, (rows, path) in result.tables.items():
        table.add_row(name, f"{rows:,}", str(path))
    console.print(table)
    console.print(f"wrote {result.events:,} events in {result.seconds:.1f} s to {cfg.out}")


@data_app.command("import")
@user_errors
def import_public(
    dataset: Dataset = typer.Argument(..., help="cdnow (purchases) or movielens-100k (ratings)."),
    out: Path = typer.Option(..., help="Folder to write the input-contract tables into."),
) -> None:
    """Convert public data shipped inside installed packages to the input contract."""
    from features.public import import_dataset

    counts = import_dataset(dataset, out)
    table = Table(title=f"{dataset} -> {out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@data_app.command("validate")
@user_errors
def validate(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Data folder with events (and optional customers, items)."),
    max_reject_share: float = typer.Option(
        0.05, min=0.0, max=1.0, help="Stop (exit 2) when a table has a larger share of bad rows."
    ),
    config: Path | None = config_option(),
) -> None:
    """Check a data folder against the input contract; bad rows go to DATA/rejects/."""
    from features.contract import ContractError
    from features.contract import validate as validate_data

    cfg = job_config(ctx, ValidateConfig)
    try:
        report = validate_data(cfg.data, max_reject_share=cfg.max_reject_share, reuse=False)
    except ContractError as exc:
        rejects = cfg.data / "rejects"
        if rejects.is_dir():
            print_rejects(rejects)
        raise exc
    print_report(report)


def print_report(report) -> None:
    """The rows in, clean and rejected per table, and the reasons of the rejects."""
    table = Table(title=f"validation of {report.data_dir}")
    for col in ("table", "rows in", "clean", "rejected"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for r in report.tables.values():
        table.add_row(r.table, f"{r.rows_in:,}", f"{r.rows_clean:,}", f"{r.rows_rejected:,}")
    console.print(table)
    for r in report.tables.values():
        for reason, count in r.rejects.items():
            console.print(f"  {r.table} rejected {reason}: {count:,}", highlight=False)
    if any(r.rejects for r in report.tables.values()):
        console.print(
            f"bad rows written to {report.data_dir / 'rejects'}/ with a reason column", soft_wrap=True
        )


def print_rejects(rejects_dir: Path) -> None:
    """The reasons of the rejected rows in ``rejects_dir``, most frequent first."""
    import duckdb

    for f in sorted(rejects_dir.glob("*.parquet")):
        rows = duckdb.execute(
            "SELECT reason, count(*) FROM read_parquet(?) GROUP BY 1 ORDER BY 2 DESC", [str(f)]
        ).fetchall()
        for reason, count in rows:
            console.print(f"  {f.stem} rejected {reason}: {count:,}", highlight=False)
