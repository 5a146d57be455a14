"""``crm demo``: the whole pipeline on a synthetic preset, then (optionally) the service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from crm.apps import app, console, user_errors
from crm.config import config_option, job_config
from features.vocab import DemoPreset

if TYPE_CHECKING:
    from crm.pipeline import DemoResult
    from features.store import Store


def curl_examples(port: int, customer_id: str) -> str:
    """The curl commands that try every endpoint of the service on ``port``."""
    base = f"http://127.0.0.1:{port}"
    return "\n".join(
        [
            f"curl -s {base}/readyz",
            f"curl -s -X POST {base}/recommend -H 'Content-Type: application/json'"
            f' -d \'{{"customer_id": "{customer_id}", "k": 5}}\'',
            f"curl -s -X POST {base}/recommend -H 'Content-Type: application/json'"
            ' -d \'{"customer_id": "someone-new", "k": 3}\'',
            f"curl -s -X POST {base}/recommend_batch -H 'Content-Type: application/json'"
            f' -d \'{{"customer_ids": ["{customer_id}", "someone-new"], "k": 3}}\'',
            f"curl -s -X POST {base}/churn_score -H 'Content-Type: application/json'"
            f' -d \'{{"customer_ids": ["{customer_id}"]}}\'',
            f"curl -s -X POST {base}/churn_list -H 'Content-Type: application/json'"
            ' -d \'{"min_probability": 0.5, "limit": 5}\'',
            f"curl -s -X POST {base}/winback_list -H 'Content-Type: application/json' -d '{{\"limit\": 5}}'",
            f"curl -s -X POST {base}/retention_plan -H 'Content-Type: application/json'"
            ' -d \'{"offer": "coupon", "budget": 500}\'',
        ]
    )


def end_summary(result: DemoResult, store: Store, port: int) -> str:
    """Where the demo wrote, the store it used, and the commands that browse and serve them."""
    import shlex

    from features.store import Store

    online = result.work_dir / "online"
    # the store's variables, unless it is the default one (what `crm serve` reads in a fresh shell)
    variables = {} if store.env() == Store().env() else store.env()
    env = "".join(f"{key}={shlex.quote(value)} " for key, value in variables.items())
    serve = f"{env}crm serve --snapshot {shlex.quote(str(online))} --port {port}"
    if store.embedded:
        artifacts = shlex.quote(str(store.root / "artifacts"))
        browse = f"mlflow ui --backend-store-uri {store.tracking} --default-artifact-root {artifacts}"
    else:
        browse = f"open {store.tracking}"  # a tracking server
    lines = {
        "data": result.work_dir / "data",
        "churn list": result.output("churn list", "churn_list"),
        "win-back list": result.output("win-back list", "winback_list"),
        "retention plan": result.output("retention plan", "retention_plan"),
        "online snapshot": online,
        "MLflow store": store.tracking,
        "browse it": browse,
        "serve": serve,
    }
    return "\n".join(f"{name + ':':<17}{value}" for name, value in lines.items())


@app.command("demo")
@user_errors
def demo(
    ctx: typer.Context,
    preset: DemoPreset = typer.Option(
        "demo", help="Synthetic preset: tiny (seconds) or demo (~50k customers)."
    ),
    seed: int = typer.Option(42, help="Simulator seed."),
    work_dir: Path | None = typer.Option(
        None, help="Where data, features and the lists go.", show_default="out/PRESET"
    ),
    churn_trials: int = typer.Option(10, "--trials", min=1, help="Optuna trials for the churn model."),
    recommender_epochs: int = typer.Option(
        5, "--epochs", min=1, help="Two-tower epochs (`crm train recommender` uses 8)."
    ),
    uplift_trials: int = typer.Option(
        3, "--uplift-trials", min=1, help="Optuna trials per offer for the uplift model."
    ),
    plan_budget: float = typer.Option(
        10_000.0, min=0.01, help="Budget of the retention plan the demo writes (its offer: the best-ranked)."
    ),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the service when the pipeline ends."),
    port: int = typer.Option(3000, help="Port of the service."),
    force: bool = typer.Option(False, help="Rerun every step instead of reusing finished ones."),
    config: Path | None = config_option(),
) -> None:
    """Run the whole pipeline on a simulated preset, then serve.

    Simulate, validate, build features, train and promote the models, write the retention and
    win-back lists, measure them against the simulator's truth, and write a retention plan with a
    control group.
    """
    import pandas as pd

    from crm import settings
    from crm.pipeline import DemoConfig, headline_table, list_quality_table, run, summary_table

    cfg = job_config(ctx, DemoConfig, store=settings.store())
    if serve:  # now, not after a pipeline of minutes
        from crm.commands.serve import check_port_free

        check_port_free("127.0.0.1", port)
    result = run(cfg, console=console)
    console.print(summary_table(result))
    console.print(headline_table(result))
    quality = list_quality_table(result)
    if quality is not None:
        console.print(quality)
    online = result.work_dir / "online"
    console.print(end_summary(result, cfg.store, port), soft_wrap=True, highlight=False)
    first = pd.read_parquet(online / "snapshot.parquet", columns=["customer_id"])["customer_id"].iloc[0]
    when = "once it is ready" if serve else "once the serve command above is ready"
    console.print(f"\ntry the service ({when}):\n" + curl_examples(port, first), soft_wrap=True)
    if serve:
        from crm.commands.serve import start_server

        start_server(port=port, host="127.0.0.1", snapshot=online, store=cfg.store)
