"""``crm train recommender`` and ``crm recommend``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from crm.apps import app, console, train_app, user_errors
from crm.config import alias_option, config_option, job_config
from features.vocab import Split
from serving.schemas import MAX_K


@train_app.command("recommender")
@user_errors
def train_recommender(
    ctx: typer.Context,
    data: Path = typer.Option(..., help="Data folder in the input contract."),
    split: Split = typer.Option("time", help="time: test on the last 90 days; random-per-user."),
    split_date: datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="Time split date."),
    test_fraction: float = typer.Option(0.25, help="Held-out share of each customer's items (random split)."),
    register_model: bool = typer.Option(False, "--register", help="Register the model as challenger."),
    metrics_json: Path | None = typer.Option(None, help="Write the holdout figures as JSON here."),
    epochs: int = typer.Option(8, min=1, help="Two-tower training epochs."),
    seed: int = typer.Option(42, help="Seed of the split, the model and the baselines."),
    category_head: bool = typer.Option(
        True,
        help="Time split: weigh categories by where each customer buys next, and refine each"
        " customer's query on their own interactions (--no-category-head: the towers alone).",
    ),
    config: Path | None = config_option(),
) -> None:
    """Train the two-tower recommender and its baselines on one split; log to MLflow."""
    from crm import settings
    from training.recommender import HEADLINE_K, RecommenderTrainConfig, run

    split_day = split_date.date() if split_date else None
    cfg = job_config(ctx, RecommenderTrainConfig, split_date=split_day, store=settings.store())
    with console.status("training the recommender") as status:
        result = run(cfg, progress=lambda msg: status.update(msg))
    k = HEADLINE_K
    table = Table(title=f"recommender holdout, {result.split.get('split')} split, K={k}")
    for col in ("model", "recall", "ndcg", "hit_rate", "coverage"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, values in result.metrics.items():
        table.add_row(
            name, *(f"{values[f'{m}_at_{k}']:.4f}" for m in ("recall", "ndcg", "hit_rate", "coverage"))
        )
    console.print(table)
    console.print(
        f"run {result.run_id}; model {result.model_uri}; two-tower trained in {result.train_seconds:.1f} s"
        f" ({result.seconds:.1f} s in all)"
    )
    if result.registered_version:
        from training.registry import registration_note

        console.print(registration_note("recommender", result.registered_version, result.challenger_version))
    if cfg.metrics_json:
        console.print(f"wrote {cfg.metrics_json}")


@app.command("recommend")
@user_errors
def recommend(
    ctx: typer.Context,
    customers: Path = typer.Option(..., help="CSV or Parquet file with a customer_id column."),
    k: int = typer.Option(10, min=1, max=MAX_K, help="Items per customer (the API's limit)."),
    out: Path = typer.Option(
        ...,
        help="Output file (.csv or .parquet), one row per recommended item: rank, item, category,"
        " subcategory, price, score (the chance among the items that could be offered) and reason.",
    ),
    model_uri: str = typer.Option("models:/recommender@champion", help="Model to use (alias or version)."),
    online_snapshot: Path | None = typer.Option(
        None,
        "--snapshot",
        help="Online snapshot folder whose owned and recent items replace the model's, as in the"
        " service (default: CRM_ONLINE_SNAPSHOT, where it exists).",
    ),
    old_online_snapshot: Path | None = alias_option("online_snapshot", "--online-snapshot"),
    categories: list[str] | None = typer.Option(
        None, "--category", help="Offer only these categories (repeatable)."
    ),
    exclude_categories: list[str] | None = typer.Option(
        None, "--exclude-category", help="Never offer these categories (repeatable)."
    ),
    config: Path | None = config_option(),
) -> None:
    """Batch top-k recommendations for an audience (owned and inactive items never offered)."""
    from crm import settings
    from serving.batch import BatchRecommendConfig, batch_recommend

    snapshot = online_snapshot or old_online_snapshot or default_snapshot()
    cfg = job_config(
        ctx, BatchRecommendConfig, online_snapshot=snapshot, categories=categories or None,
        exclude_categories=exclude_categories or None, store=settings.store(),
    )  # fmt: skip
    if cfg.online_snapshot is None:
        console.print(
            f"[yellow]no online snapshot at {settings.online_snapshot_dir()}[/]: recommending from the"
            " purchases the model was trained on (build one with `crm features build --online`)",
            soft_wrap=True,
        )
    result = batch_recommend(cfg)
    table = Table(title="recommendations")
    for col in ("customers", "rows", "popularity fallback", "seconds", "out"):
        table.add_column(col)
    counts = (f"{result.customers:,}", f"{result.rows:,}", f"{result.fallback:,}")
    table.add_row(*counts, f"{result.seconds:.1f}", str(cfg.out))
    console.print(table)
    if result.preview is not None and len(result.preview):
        console.print(preview_table(result.preview))


def preview_table(rows) -> Table:
    """The first customer's recommendations as the output file has them."""
    first = rows.iloc[0]
    title = f"first customer: {first.customer_id}" + (" (popularity fallback)" if first.fallback else "")
    table = Table(title=title)
    for col in ("rank", "item", "category", "subcategory", "price", "score", "reason"):
        table.add_column(col, justify="right" if col in ("rank", "price", "score") else "left")
    for r in rows.itertuples(index=False):
        price = "" if r.price != r.price or r.price is None else f"{r.price:,.2f}"
        subcategory = "" if r.subcategory is None or r.subcategory != r.subcategory else str(r.subcategory)
        table.add_row(str(r.rank), r.item_id, r.category, subcategory, price, f"{r.score:.4f}", r.reason)
    return table


def default_snapshot() -> Path | None:
    """The online snapshot the service and the churn list read, where there is one (a recommender
    works without: it then knows each customer's purchases as of its training)."""
    from crm import settings

    path = settings.online_snapshot_dir()
    return path if path.is_dir() else None
