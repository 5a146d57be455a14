"""``crm train churn``, ``crm promote``, ``crm churn-list``, ``crm winback-list``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.apps import app, console, train_app, user_errors
from crm.config import alias_option, choices, chosen, config_option, job_config
from features.vocab import LIFECYCLE_STAGES, ChurnLabel, ChurnSort, ModelName, Population
from serving.schemas import MAX_BATCH, TIERS

Tier = choices("Tier", TIERS)  # the API's tiers: the member tiers, and unknown for those without one
Stage = choices("Stage", LIFECYCLE_STAGES)


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
    trials: int = typer.Option(
        20, min=1, help="Optuna trials to run (on top of those a stored study of this holdout has)."
    ),
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
    from training.registry import registration_note

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
            f"{registration_note('churn', result.registered_version, result.challenger_version)}"
            f" (champion's roc_auc on this holdout: {champ}); promote with `crm promote churn`"
        )


@app.command("promote")
@user_errors
def promote(
    model: ModelName = typer.Argument(..., help="churn, recommender or value"),
    force: bool = typer.Option(False, help="Promote even if the challenger does not beat the champion."),
) -> None:
    """Move alias `champion` to the challenger if it beats the champion on the same holdout, once
    it has loaded and scored its input example (a broken challenger is never promoted)."""
    from crm import settings
    from training.registry import promote as promote_model

    result = promote_model(model, force=force, store=settings.store(), say=console.print)
    before = "no champion" if result.previous is None else f"v{result.previous}"
    versus = "" if result.champion_metric is None else f" vs {result.champion_metric:.4f}"
    console.print(
        f"[green]{model} v{result.version} is champion[/] (was {before};"
        f" {result.metric_name} {result.challenger_metric:.4f}{versus}{', forced' if force else ''};"
        f" loaded and scored {result.scored_rows} example rows first)"
    )


# The options both customer lists take (one definition; typer reads an option's declaration, never
# changes it).
OUT = typer.Option(..., help="Output file: .csv or .parquet.")
TOP = typer.Option(1000, min=1, max=MAX_BATCH, help="How many customers to list (the API's limit).")
TIERS = typer.Option([], "--tier", help="Member tier(s) to include (repeatable).")
REGIONS = typer.Option([], "--region", help="Region(s) to include (repeatable).")
OWNS = typer.Option([], help="Only owners of these categories (repeatable).")
SNAPSHOT = typer.Option(None, help="Online snapshot folder (default: CRM_ONLINE_SNAPSHOT).")


def list_config(ctx: typer.Context, cls: type, snapshot: Path | None, tiers, regions, owns, **given):
    """The list job's config from the command line (and ``--config``), the segment as the job takes it."""
    from crm import settings

    return job_config(
        ctx, cls, snapshot=snapshot or settings.online_snapshot_dir(), tiers=chosen(tiers),
        regions=regions or None, owns=owns or None, store=settings.store(), **given,
    )  # fmt: skip


@app.command("churn-list")
@user_errors
def churn_list_command(
    ctx: typer.Context,
    out: Path = OUT,
    top: int = TOP,
    min_probability: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Only customers at least this likely to churn."
    ),
    min_prob: float | None = alias_option("min_probability", "--min-prob"),
    tiers: list[Tier] = TIERS,
    regions: list[str] = REGIONS,
    owns: list[str] = OWNS,
    stages: list[Stage] = typer.Option(
        [],
        "--stage",
        help="Lifecycle stage(s) to include (repeatable; default: every one but lapsed).",
    ),
    sort: ChurnSort = typer.Option(
        "expected_loss", help="expected_loss (probability x value) or probability."
    ),
    snapshot: Path | None = SNAPSHOT,
    model_uri: str = typer.Option("models:/churn@champion", help="Model to score with."),
    value_model_uri: str = typer.Option(
        "models:/value@champion",
        help="Value model whose forecast is each customer's value (none registered: past-year revenue).",
    ),
    config: Path | None = config_option(),
) -> None:
    """Write the retention list: the snapshot's customers ranked by expected loss, lapsed ones left out.

    Lapsed customers are listed only when --stage asks for them (the win-back list is theirs).
    """
    from serving.batch import ChurnListConfig, write_churn_list

    cfg = list_config(ctx, ChurnListConfig, snapshot, tiers, regions, owns, stages=chosen(stages))
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
    out: Path = OUT,
    top: int = TOP,
    min_probability: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Only customers at least this likely to come back."
    ),
    min_prob: float | None = alias_option("min_probability", "--min-prob"),
    tiers: list[Tier] = TIERS,
    regions: list[str] = REGIONS,
    owns: list[str] = OWNS,
    snapshot: Path | None = SNAPSHOT,
    model_uri: str = typer.Option("models:/churn@champion", help="Churn model giving the reasons."),
    value_model_uri: str = typer.Option(
        "models:/value@champion", help="Value model giving the chance of return and the value."
    ),
    config: Path | None = config_option(),
) -> None:
    """Write the lapsed customers ranked by the chance of coming back x forecast value, with reasons."""
    from serving.batch import WinbackListConfig, write_winback_list

    cfg = list_config(ctx, WinbackListConfig, snapshot, tiers, regions, owns)
    result = write_winback_list(cfg)
    console.print(
        f"wrote {result.customers:,} lapsed customers to {cfg.out}; value to win back"
        f" {result.winback_value:,.2f} (by {result.value_model})"
    )
