"""``crm train churn``, ``crm promote``, ``crm churn-list``, ``crm winback-list``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.apps import app, console, train_app, user_errors
from crm.config import config_option, job_config
from features.vocab import LIFECYCLE_STAGES, ChurnLabel, ChurnSort, ModelName, Population


@train_app.command("churn")
@user_errors
def train_churn(
    ctx: typer.Context,
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    as_of: str = typer.Option(..., help="Holdout as-of date (YYYY-MM-DD); training uses earlier dates."),
    label: ChurnLabel | None = typer.Option(
        None,
        help="activity: no view, cart, purchase, post, push open, coupon or ticket in the horizon;"
        " purchase: no purchase. Default: activity where the events carry engagement, else purchase.",
    ),
    horizon_days: int = typer.Option(
        90, min=1, help="Churned = nothing the label counts within this many days."
    ),
    lookback_days: int = typer.Option(
        365, min=1, help="Purchase label's population: any event in this window."
    ),
    engaged_days: int = typer.Option(
        30, min=1, help="Activity label's population: an activity event in this many days before as-of."
    ),
    population: Population = typer.Option("active", help="active (the label's window) or all customers."),
    trials: int = typer.Option(20, min=1, help="Optuna trials (a stored study resumes where it stopped)."),
    n_train_dates: int = typer.Option(3, min=1, help="How many training as-of dates before validation."),
    date_step_days: int = typer.Option(30, min=1, help="Days between training as-of dates."),
    register_model: bool = typer.Option(
        False, "--register/--no-register", help="Register the model as the `challenger` of `churn`."
    ),
    metrics_json: Path | None = typer.Option(None, help="Write the holdout figures as JSON here."),
    seed: int = typer.Option(42),
    config: Path | None = config_option(),
) -> None:
    """Train, tune, calibrate and evaluate the LightGBM churn model; log it to MLflow."""
    from crm import settings
    from training.churn import ChurnTrainConfig, run

    cfg = job_config(ctx, ChurnTrainConfig, store=settings.store())
    with console.status("training the churn model") as status:
        result = run(cfg, progress=lambda msg: status.update(msg))
    holdout = result.as_of_dates["holdout"][0]
    table = Table(title=f"churn model ({result.label} label), holdout {holdout} ({result.seconds:.0f} s)")
    table.add_column("metric")
    table.add_column("holdout", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"MLflow run {result.run_id}; model {result.model_uri}")
    if result.registered_version:
        champ = "none" if result.champion_metric is None else f"{result.champion_metric:.4f}"
        console.print(
            f"registered churn v{result.registered_version} as challenger"
            f" (champion's roc_auc on this holdout: {champ}); promote with `crm promote churn`"
        )


@app.command("promote")
@user_errors
def promote(
    model: ModelName = typer.Argument(..., help="churn or recommender"),
    force: bool = typer.Option(False, help="Promote even if the challenger does not beat the champion."),
) -> None:
    """Move alias `champion` to the challenger if it beats the champion on the same holdout."""
    from crm import settings
    from training.registry import promote as promote_model

    result = promote_model(model, force=force, store=settings.store())
    before = "no champion" if result.previous is None else f"v{result.previous}"
    versus = "" if result.champion_metric is None else f" vs {result.champion_metric:.4f}"
    console.print(
        f"[green]{model} v{result.version} is champion[/] (was {before};"
        f" {result.metric_name} {result.challenger_metric:.4f}{versus}{', forced' if force else ''})"
    )


@app.command("churn-list")
@user_errors
def churn_list_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output file: .csv or .parquet."),
    top: int = typer.Option(1000, min=1, help="How many customers to list."),
    min_probability: float = typer.Option(
        0.0, "--min-prob", min=0.0, max=1.0, help="Only customers at least this likely to churn."
    ),
    tiers: list[str] = typer.Option([], "--tier", help="Member tier(s) to include (repeatable)."),
    regions: list[str] = typer.Option([], "--region", help="Region(s) to include (repeatable)."),
    owns: list[str] = typer.Option([], help="Only owners of these categories (repeatable)."),
    stages: list[str] = typer.Option(
        [],
        "--stage",
        help=f"Lifecycle stage(s) to include, of {', '.join(LIFECYCLE_STAGES)} (repeatable;"
        " default: every one but lapsed).",
    ),
    sort: ChurnSort = typer.Option(
        "expected_loss", help="expected_loss (probability x value) or probability."
    ),
    snapshot: Path | None = typer.Option(None, help="Online snapshot folder (default: CRM_ONLINE_SNAPSHOT)."),
    model_uri: str = typer.Option("models:/churn@champion", help="Model to score with."),
    value_model_uri: str = typer.Option(
        "models:/value@champion",
        help="Value model whose forecast is each customer's value (none registered: past-year revenue).",
    ),
    config: Path | None = config_option(),
) -> None:
    """Score the latest snapshot with the champion and write the ranked retention list (lapsed
    customers left out unless asked for with --stage)."""
    from crm import settings
    from serving.batch import ChurnListConfig, write_churn_list

    cfg = job_config(
        ctx, ChurnListConfig, snapshot=snapshot or settings.online_snapshot_dir(), tiers=tiers or None,
        regions=regions or None, owns=owns or None, stages=stages or None, store=settings.store(),
    )  # fmt: skip
    result = write_churn_list(cfg)
    valued = (
        f"forecast by {result.value_model}"
        if result.value_model
        else "past-year revenue (no value model registered: `crm train value --register`)"
    )
    console.print(
        f"wrote {result.customers:,} customers to {cfg.out}; value at risk {result.value_at_risk:,.2f},"
        f" customer value: {valued}"
    )


@app.command("winback-list")
@user_errors
def winback_list_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output file: .csv or .parquet."),
    top: int = typer.Option(1000, min=1, help="How many customers to list."),
    min_probability: float = typer.Option(
        0.0, "--min-prob", min=0.0, max=1.0, help="Only customers at least this likely to come back."
    ),
    tiers: list[str] = typer.Option([], "--tier", help="Member tier(s) to include (repeatable)."),
    regions: list[str] = typer.Option([], "--region", help="Region(s) to include (repeatable)."),
    owns: list[str] = typer.Option([], help="Only owners of these categories (repeatable)."),
    snapshot: Path | None = typer.Option(None, help="Online snapshot folder (default: CRM_ONLINE_SNAPSHOT)."),
    model_uri: str = typer.Option("models:/churn@champion", help="Churn model giving the reasons."),
    value_model_uri: str = typer.Option(
        "models:/value@champion", help="Value model giving the chance of return and the value."
    ),
    config: Path | None = config_option(),
) -> None:
    """Write the lapsed customers ranked by the chance of coming back x forecast value, with reasons."""
    from crm import settings
    from serving.batch import WinbackListConfig, write_winback_list

    cfg = job_config(
        ctx, WinbackListConfig, snapshot=snapshot or settings.online_snapshot_dir(), tiers=tiers or None,
        regions=regions or None, owns=owns or None, store=settings.store(),
    )  # fmt: skip
    result = write_winback_list(cfg)
    console.print(
        f"wrote {result.customers:,} lapsed customers to {cfg.out}; value to win back"
        f" {result.winback_value:,.2f} (by {result.value_model})"
    )
