"""``crm data synth|import|validate``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from crm.apps import console, data_app, user_errors


class Preset(StrEnum):
    tiny = "tiny"
    demo = "demo"
    large = "large"


class PublicDataset(StrEnum):
    cdnow = "cdnow"
    movielens_100k = "movielens-100k"


@data_app.command("synth")
@user_errors
def synth(
    preset: Preset = typer.Option(Preset.tiny, help="Size: tiny (~2k customers), demo (~50k), large (~1M)."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives identical files."),
    out: Path = typer.Option(..., help="Folder to write events/, customers, items and truth/ into."),
) -> None:
    """Simulate the brand's customers and write them in the input contract, with ground truth."""
    from features.synth import SynthConfig, run

    result = run(SynthConfig(preset=preset.value, seed=seed, out=out), progress=True)
    table = Table(title=f"synthetic data ({preset.value}, seed {seed})")
    for col in ("table", "rows", "path"):
        table.add_column(col)
    for name, (rows, path) in result.tables.items():
        table.add_row(name, f"{rows:,}", str(path))
    console.print(table)
    console.print(f"wrote {result.events:,} events in {result.seconds:.1f} s to {out}")


@data_app.command("import")
@user_errors
def import_public(
    dataset: PublicDataset = typer.Argument(..., help="cdnow (purchases) or movielens-100k (ratings)."),
    out: Path = typer.Option(..., help="Folder to write the input-contract tables into."),
) -> None:
    """Convert public data shipped inside installed packages to the input contract."""
    from features.public import import_dataset

    counts = import_dataset(dataset.value, out)
    table = Table(title=f"{dataset.value} -> {out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@data_app.command("validate")
@user_errors
def validate(
    data: Path = typer.Argument(..., help="Data folder with events (and optional customers, items)."),
    max_reject_share: float = typer.Option(
        0.05, min=0.0, max=1.0, help="Stop (exit 2) when a table has a larger share of bad rows."
    ),
) -> None:
    """Check a data folder against the input contract; bad rows go to DATA/rejects/."""
    from features.contract import ContractError
    from features.contract import validate as validate_data

    try:
        report = validate_data(data, max_reject_share=max_reject_share, reuse=False)
    except ContractError as exc:
        rejects = data / "rejects"
        if rejects.is_dir():
            print_rejects(rejects)
        raise exc
    print_report(report)


def print_report(report) -> None:
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
    import duckdb

    for f in sorted(rejects_dir.glob("*.parquet")):
        rows = duckdb.sql(
            f"SELECT reason, count(*) FROM read_parquet('{f}') GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        for reason, count in rows:
            console.print(f"  {f.stem} rejected {reason}: {count:,}", highlight=False)
