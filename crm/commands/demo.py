"""``crm demo``: the whole pipeline on a synthetic preset, then (optionally) the service."""

from __future__ import annotations

from pathlib import Path

import typer

from crm.apps import app, console, user_errors


@app.command("demo")
@user_errors
def demo(
    preset: str = typer.Option("demo", help="Synthetic preset: tiny (seconds) or demo (~50k customers)."),
    seed: int = typer.Option(42, help="Simulator seed."),
    work_dir: Path = typer.Option(Path("out/demo"), help="Where data, features and the churn list go."),
    trials: int = typer.Option(10, min=1, help="Optuna trials for the churn model."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the service when the pipeline ends."),
    port: int = typer.Option(3000, help="Port of the service."),
    force: bool = typer.Option(False, help="Rerun every step instead of reusing finished ones."),
) -> None:
    """Simulate, validate, build features, train and promote both models, write a churn list, serve."""
    from crm.pipeline import DemoConfig, run, summary_table

    if preset not in ("tiny", "demo"):
        raise typer.BadParameter("expected tiny or demo", param_hint="--preset")
    cfg = DemoConfig(preset=preset, seed=seed, work_dir=work_dir, churn_trials=trials, force=force)
    result = run(cfg, console=console)
    console.print(summary_table(result))
    if serve:
        console.print("[yellow]serving is not wired in yet; rerun with --no-serve[/]")
