"""``crm train value``: the forecast of each customer's net revenue if they stay."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.apps import console, train_app, user_errors
from crm.config import config_option, job_config


@train_app.command("value")
@user_errors
def train_value(
    ctx: typer.Context,
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    as_of: str = typer.Option(..., help="Holdout as-of date (YYYY-MM-DD); training uses earlier dates."),
    horizon_days: int = typer.Option(365, min=1, help="Forecast the net revenue of this many days."),
    n_train_dates: int = typer.Option(1, min=1, help="How many training as-of dates (each a step earlier)."),
    date_step_days: int = typer.Option(30, min=1, help="Days between training as-of dates."),
    register_model: bool = typer.Option(
        False, "--register/--no-register", help="Register the model as the `challenger` of `value`."
    ),
    metrics_json: Path | None = typer.Option(None, help="Write the holdout figures as JSON here."),
    seed: int = typer.Option(42),
    config: Path | None = config_option(),
) -> None:
    """Train the value model (stay x spend) and its baselines on one holdout; log it to MLflow."""
    from crm import settings
    from training.registry import registration_note
    from training.value import ValueTrainConfig, run

    cfg = job_config(ctx, ValueTrainConfig, store=settings.store())
    with console.status("training the value model") as status:
        result = run(cfg, progress=lambda msg: status.update(msg))
    table = Table(title=f"value model, holdout {result.as_of_dates['holdout'][0]} ({result.seconds:.0f} s)")
    columns = {"value model": result.metrics} | result.baselines
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for key in result.metrics:
        table.add_row(key, *(f"{values[key]:.4f}" for values in columns.values()))
    console.print(table)
    console.print(f"MLflow run {result.run_id}; model {result.model_uri}")
    if result.registered_version:
        champ = "none" if result.champion_metric is None else f"{result.champion_metric:.4f}"
        console.print(
            f"{registration_note('value', result.registered_version, result.challenger_version)}"
            f" (champion's spearman on this holdout: {champ}); promote with `crm promote value`"
        )
