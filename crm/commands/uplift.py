"""``crm train uplift``, ``crm retention-plan`` and ``crm campaign measure``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from crm.apps import app, console, train_app, user_errors
from crm.config import choices, chosen, config_option, job_config
from features.vocab import CHANNELS, OFFERS, Offer

OfferChoice = choices("OfferChoice", OFFERS)
campaign_app = typer.Typer(help="Measure past randomised campaigns.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


@train_app.command("uplift")
@user_errors
def train_uplift(
    ctx: typer.Context,
    data: Path = typer.Option(..., help="Data folder in the input contract, with a campaigns table."),
    offers: list[OfferChoice] = typer.Option(
        [], "--offer", help="Offer(s) to learn (repeatable; default: every offer with two campaigns)."
    ),
    trials: int = typer.Option(10, min=1, help="Optuna trials per offer (a stored study resumes)."),
    outcome_offset_days: int = typer.Option(28, min=0, help="Retention is read from this many days on ..."),
    outcome_days: int = typer.Option(91, min=1, help="... for this many days after a campaign's start."),
    register_model: bool = typer.Option(
        False, "--register/--no-register", help="Register the model as the `challenger` of `uplift`."
    ),
    metrics_json: Path | None = typer.Option(None, help="Write the holdout figures as JSON here."),
    seed: int = typer.Option(42),
    config: Path | None = config_option(),
) -> None:
    """Learn each offer's effect on retention from its randomised campaigns; log it to MLflow."""
    from crm import settings
    from training.uplift import UpliftTrainConfig, run

    cfg = job_config(ctx, UpliftTrainConfig, offers=chosen(offers), store=settings.store())
    with console.status("training the uplift model") as status:
        result = run(cfg, progress=lambda msg: status.update(msg))
    table = Table(title=f"uplift model, holdout campaigns ({result.seconds:.0f} s)")
    columns = ("qini", "qini_risk_ranking", "qini_oracle", "uplift_at_10", "realised_uplift")
    for name in ("offer", "holdout campaign", *columns):
        table.add_column(name, justify="left" if name in ("offer", "holdout campaign") else "right")
    for offer, figures in result.metrics.items():
        values = [f"{figures[c]:.4f}" if c in figures else "-" for c in columns]
        table.add_row(offer, result.campaigns[offer]["holdout"], *values)
    console.print(table)
    console.print(f"MLflow run {result.run_id}; model {result.model_uri}")
    if result.registered_version:
        champ = "none" if result.champion_metric is None else f"{result.champion_metric:.4f}"
        console.print(
            f"registered uplift v{result.registered_version} as challenger (mean Qini"
            f" {result.gate_metric:.4f}; champion's on these holdouts: {champ}); promote with"
            " `crm promote uplift`"
        )


@app.command("retention-plan")
@user_errors
def retention_plan_command(
    ctx: typer.Context,
    offer: Offer = typer.Option(..., help="The offer to send."),
    budget: float = typer.Option(..., min=0.0, help="What the treated customers' offers may cost at most."),
    out: Path = typer.Option(..., help="Output file: .csv or .parquet (campaigns-table columns and scores)."),
    control_share: float = typer.Option(0.1, min=0.0, max=0.95, help="Share of the audience held out."),
    cost: float | None = typer.Option(
        None, min=0.0, help="Cost of the offer per customer (default: its mean cost in its campaigns)."
    ),
    campaign_id: str | None = typer.Option(None, help="The campaign's id (default: PLAN-<date>-<offer>)."),
    channel: str | None = typer.Option(None, help=f"The offer's channel ({', '.join(CHANNELS)})."),
    seed: int = typer.Option(0, help="Seed of the control group's draw."),
    snapshot: Path | None = typer.Option(None, help="Online snapshot folder (default: CRM_ONLINE_SNAPSHOT)."),
    model_uri: str = typer.Option("models:/uplift@champion", help="Uplift model to score with."),
    value_model_uri: str = typer.Option(
        "models:/value@champion",
        help="Value model whose forecast is each customer's value (none registered: past-year revenue).",
    ),
    config: Path | None = config_option(),
) -> None:
    """Rank customers by uplift x forecast value - offer cost, keep the positive ones the budget pays
    for, hold out a random control group, and write the plan."""
    from crm import settings
    from serving.plan import RetentionPlanConfig, write_retention_plan

    cfg = job_config(
        ctx, RetentionPlanConfig, snapshot=snapshot or settings.online_snapshot_dir(), store=settings.store()
    )
    result = write_retention_plan(cfg)
    plan = result.plan
    valued = (
        result.value_model or "past-year revenue (no value model registered: `crm train value --register`)"
    )
    console.print(
        f"wrote {len(plan.customers):,} customers to {cfg.out}: {plan.treated:,} to treat at {plan.cost:.2f}"
        f" each ({plan.spend:,.2f} of {plan.budget:,.2f}), {plan.control:,} held out as control;"
        f" expected value saved {plan.expected_value_saved:,.2f}. Uplift: {result.uplift_model};"
        f" value: {valued}"
    )


@campaign_app.command("measure")
@user_errors
def measure_command(
    campaign: str = typer.Option(..., "--campaign", help="The campaign's id in the campaigns table."),
    data: Path = typer.Option(..., help="Data folder in the input contract, with a campaigns table."),
    outcome_offset_days: int = typer.Option(28, min=0, help="Retention is read from this many days on ..."),
    outcome_days: int = typer.Option(91, min=1, help="... for this many days after the campaign's start."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures as JSON here."),
) -> None:
    """The realised effect of a past randomised campaign: treatment against control, with 95% intervals."""
    from features.campaigns import OutcomeWindow, measure_campaign
    from features.contract import open_validated

    con = open_validated(data)
    m = measure_campaign(con, campaign, OutcomeWindow(outcome_offset_days, outcome_days))
    table = Table(title=f"{m.campaign_id}: {m.offer}, {m.treated:,} treated, {m.control:,} control")
    for name in ("outcome", "treated", "control", "effect", "95% interval"):
        table.add_column(name, justify="left" if name == "outcome" else "right")
    for name, effect, fmt in (("retention", m.retention, "{:.2%}"), ("revenue", m.revenue, "{:,.2f}")):
        means = (effect.treated_mean, effect.control_mean, effect.difference)
        interval = f"{fmt.format(effect.low)} .. {fmt.format(effect.high)}"
        table.add_row(name, *(fmt.format(v) for v in means), interval)
    console.print(table)
    console.print(f"offer cost per treated customer {m.cost_per_treated:,.2f}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(m.to_dict(), indent=2))
