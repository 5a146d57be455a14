"""``crm train churn``, ``crm promote``, ``crm churn-list``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from crm.apps import app, console, train_app, user_errors


class Population(StrEnum):
    active = "active"
    all = "all"


class ModelName(StrEnum):
    churn = "churn"
    recommender = "recommender"


class Sort(StrEnum):
    expected_loss = "expected_loss"
    probability = "probability"


@train_app.command("churn")
@user_errors
def train_churn(
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    as_of: str = typer.Option(..., help="Holdout as-of date (YYYY-MM-DD); training uses earlier dates."),
    horizon_days: int = typer.Option(90, min=1, help="Churned = no purchase within this many days."),
    lookback_days: int = typer.Option(365, min=1, help="Active population: any event in this window."),
    population: Population = typer.Option(Population.active, help="active or all customers."),
    trials: int = typer.Option(20, min=1, help="Optuna trials (a stored study resumes where it stopped)."),
    n_train_dates: int = typer.Option(3, min=1, help="How many training as-of dates before validation."),
    date_step_days: int = typer.Option(30, min=1, help="Days between training as-of dates."),
    register: bool = typer.Option(False, help="Register the model as the `challenger` of `churn`."),
    metrics_json: Path | None = typer.Option(None, help="Write the holdout figures as JSON here."),
    seed: int = typer.Option(42),
) -> None:
    """Train, tune, calibrate and evaluate the LightGBM churn model; log it to MLflow."""
    from training.churn import ChurnTrainConfig, run

    cfg = ChurnTrainConfig(
        data=data, as_of=as_of, horizon_days=horizon_days, lookback_days=lookback_days,
        population=population.value, trials=trials, n_train_dates=n_train_dates,
        date_step_days=date_step_days, register_model=register,
        metrics_json=metrics_json, seed=seed,
    )  # fmt: skip
    with console.status("training the churn model") as status:
        result = run(cfg, progress=lambda msg: status.update(msg))
    table = Table(title=f"churn model, holdout {result.as_of_dates['holdout'][0]} ({result.seconds:.0f} s)")
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
    from training.registry import promote as promote_model

    result = promote_model(model.value, force=force)
    before = "no champion" if result.previous is None else f"v{result.previous}"
    versus = "" if result.champion_metric is None else f" vs {result.champion_metric:.4f}"
    console.print(
        f"[green]{model.value} v{result.version} is champion[/] (was {before};"
        f" {result.metric_name} {result.challenger_metric:.4f}{versus}{', forced' if force else ''})"
    )


@app.command("churn-list")
@user_errors
def churn_list_command(
    out: Path = typer.Option(..., help="Output file: .csv or .parquet."),
    top: int = typer.Option(1000, min=1, help="How many customers to list."),
    min_prob: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Only customers at least this likely to churn."
    ),
    tier: list[str] = typer.Option([], help="Member tier(s) to include (repeatable)."),
    region: list[str] = typer.Option([], help="Region(s) to include (repeatable)."),
    owns: list[str] = typer.Option([], help="Only owners of these categories (repeatable)."),
    sort: Sort = typer.Option(Sort.expected_loss, help="expected_loss (probability x value) or probability."),
    snapshot: Path | None = typer.Option(None, help="Online snapshot folder (default: CRM_ONLINE_SNAPSHOT)."),
    model_uri: str = typer.Option("models:/churn@champion", help="Model to score with."),
) -> None:
    """Score the latest snapshot with the champion and write the ranked churn list."""
    import mlflow.pyfunc

    from crm import settings
    from features.errors import UserError
    from features.online import load_online_snapshot
    from serving.churn_scoring import churn_list
    from training.registry import configure_tracking

    if out.suffix not in (".csv", ".parquet"):
        raise UserError(f"Output {out} must end in .csv or .parquet.")
    configure_tracking()
    online = load_online_snapshot(snapshot or settings.online_snapshot_dir())
    try:
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's registry state
        raise UserError(f"Cannot load {model_uri}: {str(exc).splitlines()[0]}") from None
    ranked = churn_list(
        model, online.snapshot.reset_index(drop=True), min_probability=min_prob, limit=top,
        sort=sort.value, tiers=tier or None, regions=region or None, owns=owns or None,
    )  # fmt: skip
    write_table(ranked, out)
    console.print(
        f"wrote {len(ranked):,} customers to {out}; value at risk {ranked['value_at_risk'].sum():,.0f}"
    )


def write_table(frame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame = frame.assign(top_reasons=frame["top_reasons"].map("; ".join))
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
