"""The recommender job: split, train the two-tower model and the baselines, evaluate, log, register.

The data preparation is in training/recommender_data.py, the evaluation and its figures in
training/recommender_eval.py. On a time split the two-tower model has two more parts (see
training/two_tower.py): each customer's query refined on their own interactions, and a category
head trained on earlier windows of the same length as the test window (customer state from the
feature snapshot at each window's start, the categories bought in it).
``two_tower_towers_only`` reports the towers without both, on the same split.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.interactions import (
    InteractionSplit,
    build_interactions,
    default_split_date,
    random_per_user_split,
    time_split,
)
from features.store import Store
from features.vocab import Split
from serving.bundle import CategoryIntent, ItemLists, RecommenderBundle
from serving.retrieval import Retrieval
from training import tracking
from training.baselines import ALS, CoOccurrence, Popularity
from training.recommender_data import Prepared, head_inputs, prepare, tower_inputs
from training.recommender_eval import (
    HEADLINE_FIGURES,
    HEADLINE_K,
    HEADLINE_METRIC,
    comparison_plot,
    evaluate_retrieval,
    evaluate_scores,
    loss_plot,
    oracle_metrics,
)
from training.two_tower import (
    ONE_PROCESS,
    CategoryHeadTask,
    TwoTowerConfig,
    TwoTowerTrainTask,
    Workers,
    export_bundle,
    refine_customers,
)

MODEL_NAME = "recommender"
# What the logged model imports to load and score (besides mlflow and cloudpickle); pyarrow reads
# the bundle's tables. The towers are served in numpy: no torch.
REQUIREMENTS = ("faiss-cpu", "numpy", "pandas", "pyarrow", "scipy")
ABLATIONS = ("two_tower_towers_only",)  # parts of the two-tower model, reported beside it


class RecommenderTrainConfig(BaseModel):
    """What ``crm train recommender`` does."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    split: Split = "time"
    split_date: datetime | date | str | None = None  # time split; default 90 days before the end
    test_fraction: float = Field(0.25, gt=0, lt=1)
    register_model: bool = False
    metrics_json: Path | None = None
    experiment: str = "recommender"
    seed: int = 42
    epochs: int = Field(8, ge=1)
    dim: int = Field(64, ge=4)
    temperature: float = Field(0.3, gt=0)
    history_len: int = Field(50, ge=1)
    category_head: bool = True  # on a time split: weigh categories by where customers buy next
    refine_l2: float = Field(1.0, ge=0)  # with the head: per-customer refinement (0: none)
    baselines: bool = True
    log_model: bool = True
    store: Store = Field(default_factory=Store)

    def two_tower(self) -> TwoTowerConfig:
        """The two-tower hyperparameters this job sets (the others keep their defaults)."""
        return TwoTowerConfig(
            dim=self.dim,
            epochs=self.epochs,
            temperature=self.temperature,
            history_len=self.history_len,
            seed=self.seed,
            refine_l2=self.refine_l2,
        )


@dataclass
class RecommenderResult:
    """Holdout figures per model, the run, the registered version."""

    split: dict
    metrics: dict[str, dict[str, float]]  # model -> metric name -> value
    losses: list[float]
    rows: dict[str, int]
    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    champion_metric: float | None = None
    seconds: float = 0.0
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    # the version holding alias challenger once this run registered (a later job's, if one was faster)
    challenger_version: str | None = None


@dataclass
class TrainedTwoTower:
    """The fitted towers, their served form (with the head and refinement), losses and fit time."""

    task: TwoTowerTrainTask
    retrieval: Retrieval
    losses: list[float]
    seconds: float


def load_split(con, cfg: RecommenderTrainConfig) -> InteractionSplit:
    """Interactions split as configured (time: at ``split_date``, default 90 days before the end)."""
    interactions = build_interactions(con)
    if interactions.empty:
        raise UserError(f"{cfg.data} has no purchases, add-to-cart or view events with items to learn from.")
    if cfg.split == "time":
        return time_split(interactions, cfg.split_date or default_split_date(con))
    return random_per_user_split(interactions, cfg.test_fraction, seed=cfg.seed)


# ---------------------------------------------------------------------------------------------
# training


def train_two_tower(
    con, prep: Prepared, cfg: RecommenderTrainConfig, say=None, workers: Workers = ONE_PROCESS
) -> TrainedTwoTower:
    """Fit the towers (over ``workers``), then the category head and the refinement; export them."""
    say = say or (lambda msg: None)
    tt = cfg.two_tower()
    inputs, feature_names = tower_inputs(con, prep, tt)
    task = TwoTowerTrainTask(inputs, tt)
    start = time.perf_counter()
    losses = task.fit(lambda e, loss: say(f"two-tower epoch {e + 1}/{tt.epochs}: loss {loss:.4f}"), workers)
    offsets, intent = fit_head_and_refinement(con, prep, cfg, task, say)
    seconds = time.perf_counter() - start
    bundle = export(task, prep, feature_names, offsets, intent)
    return TrainedTwoTower(task, Retrieval(bundle), losses, seconds)


def fit_head_and_refinement(
    con, prep: Prepared, cfg: RecommenderTrainConfig, task: TwoTowerTrainTask, say
) -> tuple[np.ndarray | None, CategoryIntent | None]:
    """The category head's served form and the per-customer offsets, where the split allows them.

    The refinement fits a softmax *within* categories, so it goes with the head that weighs the
    categories; alone (a random split, where no later window exists) it lowered NDCG@10 on
    MovieLens-100k in a probe.
    """
    head = head_inputs(con, prep) if cfg.category_head else None
    if head is None:
        return None, None
    rows, serving_features = head
    say(f"category head on {len(rows.bought):,} customer windows")
    head_task = CategoryHeadTask(rows, task.cfg)
    head_task.fit()
    intent = head_task.export(serving_features)
    if cfg.refine_l2 <= 0:
        return None, intent
    say(f"refining {task.inputs.n_customers:,} customers on their own interactions")
    return refine_customers(task, prep.matrix, task.inputs.item_category), intent


def export(
    task: TwoTowerTrainTask,
    prep: Prepared,
    feature_names: list[str],
    offsets: np.ndarray | None,
    intent: CategoryIntent | None,
) -> RecommenderBundle:
    """The served bundle: the towers, the customers' owned and recent items, popularity."""
    tt = task.cfg
    counts = np.asarray((prep.matrix > 0).sum(axis=0)).ravel()
    return export_bundle(
        task,
        customer_ids=prep.customer_ids,
        item_ids=prep.item_ids,
        item_category=prep.items["category"].to_numpy(),
        item_active=prep.items["active"].to_numpy(),
        owned=prep.owned,
        recent=ItemLists.from_lists([prep.recent.row(r)[: tt.history_len] for r in range(prep.recent.rows)]),
        popularity=counts / max(counts.sum(), 1),
        meta={"customer_features": feature_names, "config": tt.params(), "split": prep.split.info},
        customer_offset=offsets,
        intent=intent,
    )


def evaluate_models(
    cfg: RecommenderTrainConfig, prep: Prepared, trained: TrainedTwoTower, say
) -> dict[str, dict[str, float]]:
    """Holdout figures of the two-tower model, its towers alone, the baselines and the oracle."""
    bundle = trained.retrieval.bundle
    metrics = {"two_tower": evaluate_retrieval(trained.retrieval, prep)}
    if bundle.customer_offset is not None or bundle.intent is not None:
        metrics["two_tower_towers_only"] = evaluate_retrieval(Retrieval(bundle.towers_only()), prep)
    baselines = [Popularity(), CoOccurrence(), ALS(seed=cfg.seed)] if cfg.baselines else []
    for model in baselines:
        say(f"fitting baseline {model.name}")
        model.fit(prep.matrix)
        metrics[model.name] = evaluate_scores(model.scores, prep)
    oracle = oracle_metrics(cfg.data, prep)
    if oracle is not None:
        metrics["oracle"] = oracle
    return metrics


# ---------------------------------------------------------------------------------------------
# the job


def run(cfg: RecommenderTrainConfig, progress=None) -> RecommenderResult:
    """Split, train the two-tower model and baselines, evaluate all, log to MLflow, maybe register."""
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    con = open_validated(cfg.data)
    split = load_split(con, cfg)
    prep = prepare(con, split)
    if not len(prep.test_customers):
        raise UserError(f"The {cfg.split} split of {cfg.data} leaves no test purchases to evaluate on.")
    rows = {
        "train_interactions": len(split.train),
        "test_purchases": len(split.test),
        "customers": len(prep.customer_ids),
        "items": len(prep.item_ids),
        "test_customers": len(prep.test_customers),
    }
    say(f"split {split.info}: {rows}")
    trained = train_two_tower(con, prep, cfg, say)
    metrics = evaluate_models(cfg, prep, trained, say)
    result = RecommenderResult(split.info, metrics, trained.losses, rows, train_seconds=trained.seconds)
    examples = len(trained.task.inputs.example_item) * len(trained.losses)
    result.extra["interactions_per_second"] = examples / max(trained.seconds, 1e-9)
    log_run(cfg, prep, trained, result, say)
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def log_run(
    cfg: RecommenderTrainConfig, prep: Prepared, trained: TrainedTwoTower, result: RecommenderResult, say
) -> None:
    """Log parameters, metrics, plots and the pyfunc model; register it as challenger if asked."""
    import mlflow
    from training import registry

    fingerprint = input_fingerprint(cfg.data)
    registry.experiment(cfg.experiment, cfg.store)
    headline = HEADLINE_METRIC
    with mlflow.start_run(run_name=f"recommender {cfg.split}") as run:
        _log_params_and_figures(cfg, prep, trained.task.cfg, result, fingerprint)
        result.run_id = run.info.run_id
        if not cfg.log_model:
            return
        result.model_uri = _log_model(trained.retrieval, prep)
        if cfg.register_model:
            result.champion_metric = _champion_metric(cfg.store, prep, headline, say)
    if cfg.register_model:
        key = registry.holdout_key(data=fingerprint, **prep.split.info)
        version = registry.register_challenger(
            result.model_uri, MODEL_NAME, key, headline, result.metrics["two_tower"][headline],
            result.champion_metric, description=version_description(cfg, trained.retrieval, result),
            store=cfg.store, say=say,
        )  # fmt: skip
        result.registered_version = version.version
        holder = registry.get_alias(MODEL_NAME, registry.CHALLENGER, store=cfg.store)
        result.challenger_version = None if holder is None else holder.version


def version_description(cfg: RecommenderTrainConfig, retrieval: Retrieval, result: RecommenderResult) -> str:
    """What a registered version is, in a paragraph: the model's parts, the split, the figures."""
    bundle = retrieval.bundle
    parts = [p for p, there in (("a category head", bundle.intent is not None),
             ("per-customer refinement", bundle.customer_offset is not None)) if there]  # fmt: skip
    info = result.split
    split = (
        f"a time split at {info['split_date']} (trained on what came before, tested on the purchases after)"
        if info.get("split") == "time"
        else f"a random split holding out {info.get('test_fraction', cfg.test_fraction):.0%} of each"
        f" customer's items (seed {info.get('seed', cfg.seed)})"
    )
    k = HEADLINE_K
    figures = result.metrics["two_tower"]
    others = ("two_tower", "oracle", *ABLATIONS)
    baselines = {n: m[HEADLINE_METRIC] for n, m in result.metrics.items() if n not in others}
    best = max(baselines, key=baselines.get) if baselines else None
    versus = f", against {baselines[best]:.4f} for the best baseline ({best})" if best else ""
    champion = (
        ""
        if result.champion_metric is None
        else f"; the champion scored {result.champion_metric:.4f} on the same split"
    )
    return (
        f"Two-tower recommender served through FAISS{' with ' + ' and '.join(parts) if parts else ''},"
        f" trained for {len(result.losses)} epoch{'s' * (len(result.losses) != 1)} on"
        f" {result.rows['train_interactions']:,} interactions"
        f" of {result.rows['customers']:,} customers with {result.rows['items']:,} items, on {split}."
        f" Recall@{k} on the {result.rows['test_customers']:,} test customers is"
        f" {figures[HEADLINE_METRIC]:.4f} (NDCG@{k} {figures[f'ndcg_at_{k}']:.4f}){versus}{champion}."
    )


def _log_params_and_figures(
    cfg: RecommenderTrainConfig,
    prep: Prepared,
    tt: TwoTowerConfig,
    result: RecommenderResult,
    fingerprint: str,
) -> None:
    """The run's parameters, tags, losses, holdout metrics and plots."""
    import mlflow

    mlflow.log_params(tt.params() | {f"split_{k}": v for k, v in prep.split.info.items()})
    mlflow.log_params({f"rows_{k}": v for k, v in result.rows.items()})
    if cfg.baselines:
        mlflow.log_params(ALS(seed=cfg.seed).params())
    mlflow.set_tags(tracking.run_tags(cfg.data, fingerprint))
    split = prep.split
    tracking.log_dataset(split.train, "recommender training interactions", "training", cfg.data)
    tracking.log_dataset(split.test, "recommender test purchases", "evaluation", cfg.data)
    for epoch, loss in enumerate(result.losses):
        mlflow.log_metric("two_tower_train_loss", loss, step=epoch + 1)
    for model, values in result.metrics.items():
        mlflow.log_metrics({f"{model}_{k}": v for k, v in values.items()})
    mlflow.log_metric("two_tower_train_seconds", result.train_seconds)
    mlflow.log_figure(comparison_plot(result.metrics), "ranking_comparison.png")
    mlflow.log_figure(loss_plot(result.losses), "training_curve.png")


def _log_model(retrieval: Retrieval, prep: Prepared) -> str:
    """Log the served bundle as the run's pyfunc model (with its signature); returns its URI."""
    import tempfile

    from mlflow.models import infer_signature
    from mlflow.types.schema import Array, ColSpec, Schema

    from serving.pyfunc import RecommenderModel

    example = pd.DataFrame(
        {
            "customer_id": [str(prep.customer_ids[0]), "unknown-customer"],
            "recent_items": [list(map(str, prep.item_ids[:2])), []],
        }
    )
    output = retrieval.to_frame(retrieval.recommend_arrays(example["customer_id"].tolist(), HEADLINE_K))
    signature = infer_signature(example, output, params={"k": HEADLINE_K})
    signature.inputs = Schema(  # recent_items is optional: without it the model's own are used
        [ColSpec("string", "customer_id"), ColSpec(Array("string"), "recent_items", required=False)]
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = retrieval.bundle.save(Path(tmp) / "bundle")
        info = tracking.log_model(
            RecommenderModel(),
            REQUIREMENTS,
            artifacts={"bundle": str(bundle_dir)},
            signature=signature,
            input_example=example,
        )
    return info.model_uri


def _champion_metric(store: Store, prep: Prepared, headline: str, say) -> float | None:
    """The current champion's headline figure on this holdout (None without a champion), logged."""
    import mlflow
    from training import registry

    champion = registry.get_alias(MODEL_NAME, registry.CHAMPION, store=store)
    if champion is None:
        return None
    say(f"scoring champion v{champion.version} on the same holdout")
    champ = mlflow.pyfunc.load_model(champion.uri).unwrap_python_model()
    value = evaluate_retrieval(champ.retrieval, prep)[headline]
    mlflow.log_metric(f"champion_{headline}", value)
    return value


def write_metrics_json(path: Path, result: RecommenderResult, k: int = HEADLINE_K) -> dict[str, Any]:
    """The holdout figures at the headline K per model (the oracle too, the ablations apart),
    every K, the split and the run, as JSON at ``path``; returns the document."""
    headline = {
        name: {m: round(values[f"{m}_at_{k}"], 6) for m in HEADLINE_FIGURES}
        for name, values in result.metrics.items()
    }
    doc: dict[str, Any] = {
        "model": "recommender",
        "k": k,
        "split": result.split.get("split"),
        # parts of the two-tower model alone go under "ablations", so that "the best baseline"
        # stays a choice among the baselines
        "models": {name: figures for name, figures in headline.items() if name not in ABLATIONS},
        "ablations": {name: figures for name, figures in headline.items() if name in ABLATIONS},
        "all_k": {
            name: {m: round(v, 6) for m, v in values.items()} for name, values in result.metrics.items()
        },
        "split_info": result.split,
        "rows": result.rows,
        "run_id": result.run_id,
        "registered_version": result.registered_version,
    }
    if "oracle" in result.metrics and result.metrics["oracle"][f"recall_at_{k}"] > 0:
        doc["two_tower_share_of_oracle_recall"] = round(
            result.metrics["two_tower"][f"recall_at_{k}"] / result.metrics["oracle"][f"recall_at_{k}"], 4
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return doc
