"""The recommender job: split, train the two-tower model and the baselines, evaluate, log, register.

Every model ranks the whole catalogue for each test customer with that customer's training items
excluded; Recall/NDCG/HitRate@K and coverage for K in 5, 10, 20. The two-tower model is evaluated
through its served form (numpy towers + FAISS + business filters), so the figures are those of the
model that gets registered. On simulated data the oracle (true tastes) gives the ceiling.

On a time split the two-tower model has two more parts (see training/two_tower.py): each
customer's query refined on their own interactions, and a category head trained on earlier
windows of the same length as the test window (customer state from the feature snapshot at each
window's start, the categories bought in it). ``two_tower_towers_only`` reports the towers
without both, on the same split.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.families import FEATURE_SET_NAME, feature_set_version
from features.interactions import (
    SPLITS,
    InteractionSplit,
    build_interactions,
    default_split_date,
    random_per_user_split,
    time_split,
)
from features.snapshot import build_snapshot
from serving.retrieval import RECENT_SLOTS, BusinessFilters, ItemLists, Retrieval
from training.baselines import ALS, CoOccurrence, Popularity
from training.metrics import RANKING_KS, ranking_metrics, top_k
from training.two_tower import (
    CategoryHeadTask,
    HeadInputs,
    TowerInputs,
    TwoTowerConfig,
    TwoTowerTrainTask,
    export_bundle,
    history_matrix,
    refine_customers,
)

MODEL_NAME = "recommender"
HEADLINE_K = 10
PRICE_BANDS = 5
TOP_CATEGORIES = 20  # category-mix features for at most this many categories
HEAD_WINDOWS = 4  # earlier windows the category head learns from
ABLATIONS = ("two_tower_towers_only",)  # parts of the two-tower model, reported beside it


class RecommenderTrainConfig(BaseModel):
    """What ``crm train recommender`` does."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    split: str = "time"
    split_date: date | None = None
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


# ---------------------------------------------------------------------------------------------
# data preparation: positions, matrices, features


@dataclass
class Prepared:
    """The split in positions: customers (with training data) and items of the catalogue."""

    split: InteractionSplit
    customer_ids: np.ndarray  # (n_customers,) customers with training interactions
    item_ids: np.ndarray  # (n_items,)
    items: pd.DataFrame  # catalogue rows in item order: category, subcategory, price, active
    matrix: sp.csr_matrix  # (n_customers, n_items) summed interaction weights
    owned: ItemLists  # training purchases per customer (excluded from ranking)
    recent: ItemLists  # training purchases per customer, newest first
    test_customers: np.ndarray  # (n_test,) customer ids with held-out purchases
    test_rows: np.ndarray  # their customer positions (-1: no training data)
    relevant: list[np.ndarray]  # held-out item positions per test customer


def load_split(con, cfg: RecommenderTrainConfig) -> InteractionSplit:
    """Interactions split as configured (time: at ``split_date``, default 90 days before the end)."""
    if cfg.split not in SPLITS:
        raise UserError(f"Unknown split {cfg.split!r}: expected one of {', '.join(SPLITS)}.")
    interactions = build_interactions(con)
    if interactions.empty:
        raise UserError(f"{cfg.data} has no purchases, add-to-cart or view events with items to learn from.")
    if cfg.split == "time":
        return time_split(interactions, cfg.split_date or default_split_date(con))
    return random_per_user_split(interactions, cfg.test_fraction, seed=cfg.seed)


def prepare(con, split: InteractionSplit) -> Prepared:
    """Positions for customers and items, the training matrix, owned/recent lists, test sets."""
    catalogue = con.execute("SELECT item_id, category, subcategory, price, active FROM items").df()
    seen = pd.Index(pd.concat([split.train["item_id"], split.test["item_id"]]).unique())
    extra = seen.difference(pd.Index(catalogue["item_id"]))
    if len(extra):  # items only in the events: unknown category, active
        catalogue = pd.concat(
            [catalogue, pd.DataFrame({"item_id": extra, "active": True})], ignore_index=True
        )
    catalogue = catalogue.sort_values("item_id").reset_index(drop=True)
    catalogue["category"] = catalogue["category"].fillna("unknown").astype(str)
    catalogue["subcategory"] = catalogue["subcategory"].fillna("unknown").astype(str)
    catalogue["active"] = catalogue["active"].fillna(True).astype(bool)
    item_index = pd.Index(catalogue["item_id"])
    customer_index = pd.Index(np.sort(split.train["customer_id"].unique()))

    train = split.train
    rows = customer_index.get_indexer(train["customer_id"])
    cols = item_index.get_indexer(train["item_id"])
    matrix = sp.csr_matrix(
        (train["weight"].to_numpy(np.float32), (rows, cols)), shape=(len(customer_index), len(item_index))
    )
    matrix.sum_duplicates()
    buys = train[train["event_type"] == "purchase"].sort_values("ts", ascending=False, kind="stable")
    buys = buys.drop_duplicates(["customer_id", "item_id"])
    owned = _lists(customer_index, item_index, buys)
    recent = owned  # newest first already

    test = split.test
    test_customers = np.sort(test["customer_id"].unique())
    test_rows = customer_index.get_indexer(test_customers)
    grouped = test.assign(pos=item_index.get_indexer(test["item_id"])).groupby("customer_id")["pos"]
    relevant_map = {c: np.asarray(v, dtype=np.int64) for c, v in grouped}
    relevant = [relevant_map[c] for c in test_customers]
    return Prepared(
        split, customer_index.to_numpy(dtype=object), item_index.to_numpy(dtype=object), catalogue,
        matrix, owned, recent, test_customers, test_rows, relevant,
    )  # fmt: skip


def _lists(customer_index: pd.Index, item_index: pd.Index, frame: pd.DataFrame) -> ItemLists:
    """Per customer position, the item positions of ``frame`` rows in their order."""
    rows = customer_index.get_indexer(frame["customer_id"])
    cols = item_index.get_indexer(frame["item_id"])
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=len(customer_index))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ItemLists(indptr, cols[order].astype(np.int64))


def customer_features(con, prep: Prepared) -> tuple[np.ndarray, list[str]]:
    """Standardised profile (age, gender, region, tier, points, tenure) and category mix of the
    training purchases, one row per customer position. Computed from training data only."""
    customers = con.execute("SELECT * FROM customers").df().set_index("customer_id")
    customers = customers.reindex(prep.customer_ids)
    end = prep.split.train["ts"].max()
    columns: dict[str, np.ndarray] = {}
    if customers["birth_year"].notna().any():
        columns["age"] = (end.year - customers["birth_year"]).to_numpy(float)
    if customers["signup_ts"].notna().any():
        columns["tenure_days"] = (end - pd.to_datetime(customers["signup_ts"])).dt.days.to_numpy(float)
    columns["log_points"] = np.log1p(customers["points_balance"].clip(lower=0).to_numpy(float))
    tiers = {"standard": 0, "silver": 1, "gold": 2, "platinum": 3}
    columns["tier"] = customers["member_tier"].map(tiers).to_numpy(float)
    for col in ("gender", "region"):
        for value in sorted(customers[col].dropna().unique())[:12]:
            columns[f"{col}_{value}"] = (customers[col] == value).to_numpy(float)
    counts = np.asarray((prep.matrix > 0).sum(axis=1)).ravel()
    columns["log_items"] = np.log1p(counts)
    # category mix of training purchases (owned lists)
    item_cat = prep.items["category"].to_numpy()
    top = prep.items["category"].value_counts().index[:TOP_CATEGORIES]
    owner = np.repeat(np.arange(prep.owned.rows), prep.owned.lengths())
    cats = item_cat[prep.owned.indices]
    n_owned = np.maximum(prep.owned.lengths(), 1)
    for c in top:
        share = np.bincount(owner[cats == c], minlength=prep.owned.rows) / n_owned
        columns[f"share_{c}"] = share
    names = list(columns)
    frame = pd.DataFrame(columns, columns=names, dtype=float)
    std = frame.std(ddof=0).fillna(0.0)
    x = (frame - frame.mean().fillna(0.0)) / std.where(std > 0, 1.0)
    return x.fillna(0.0).to_numpy(np.float32), names  # missing values sit at the mean


def tower_inputs(con, prep: Prepared, tt: TwoTowerConfig) -> tuple[TowerInputs, list[str]]:
    """Arrays for the two-tower model: features, item codes, histories, weighted examples."""
    features, names = customer_features(con, prep)
    items = prep.items
    price = pd.to_numeric(items["price"], errors="coerce")
    bands = np.zeros(len(items), dtype=np.int64)
    if price.notna().any():
        ranks = price.rank(pct=True).to_numpy()
        bands = np.where(
            np.isnan(ranks), 0, 1 + np.minimum((ranks * PRICE_BANDS).astype(int), PRICE_BANDS - 1)
        )
    coo = prep.matrix.tocoo()
    inputs = TowerInputs(
        customer_features=features,
        item_category=pd.factorize(items["category"], sort=True)[0].astype(np.int64),
        item_subcategory=pd.factorize(items["category"] + "/" + items["subcategory"], sort=True)[0].astype(
            np.int64
        ),
        item_price_band=bands.astype(np.int64),
        history=history_matrix(prep.recent, tt.history_len),
        example_customer=coo.row.astype(np.int64),
        example_item=coo.col.astype(np.int64),
        # one example per (customer, item) pair, whatever its events: down-weighting views by their
        # event weight lost half the recall on the synthetic time split in a probe here
        example_weight=np.ones(len(coo.data), dtype=np.float32),
    )
    return inputs, names


def head_inputs(con, prep: Prepared, windows: int = HEAD_WINDOWS) -> tuple[HeadInputs, np.ndarray] | None:
    """Training rows for the category head and the serving features, or None without room.

    The test window of a time split has length ``h``; the head learns from ``windows`` earlier
    windows of that length: the customer state at the start of each (the feature snapshot there,
    the categories of the newest purchases) and the categories bought inside it. Returns the
    inputs and the standardised features of every customer at the split date, which the served
    head starts from.
    """
    split = prep.split
    if split.info.get("split") != "time":
        return None  # a random split has no "next": the held-out items are not later in time
    split_at = pd.Timestamp(split.info["split_date"])
    end = pd.Timestamp(con.execute("SELECT max(ts) FROM events").fetchone()[0])
    horizon = pd.Timedelta(days=max(int(np.ceil((end - split_at) / pd.Timedelta(days=1))), 30))
    first = split.train["ts"].min()
    starts = [split_at - horizon * (k + 1) for k in range(windows)]
    starts = [t for t in starts if t - first >= horizon]  # some history before each window
    if not starts:
        return None
    categories = np.sort(prep.items["category"].unique()).astype(object)
    item_code = pd.Index(categories).get_indexer(prep.items["category"])
    buys = split.train[split.train["event_type"] == "purchase"]
    buys = buys.assign(code=item_code[pd.Index(prep.item_ids).get_indexer(buys["item_id"])])
    customers = pd.Index(prep.customer_ids)

    def state(at: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
        snap = build_snapshot(con, at.to_pydatetime()).set_index("customer_id").reindex(customers)
        before = buys[buys["ts"] < at].sort_values("ts", ascending=False, kind="stable")
        before = before.drop_duplicates(["customer_id", "item_id"])  # as the recent-items list
        before = before.assign(slot=before.groupby("customer_id").cumcount())
        before = before[before["slot"] < RECENT_SLOTS]
        recent = np.full((len(customers), RECENT_SLOTS), -1, dtype=np.int64)
        recent[customers.get_indexer(before["customer_id"]), before["slot"].to_numpy()] = before["code"]
        return snap.select_dtypes("number").astype(float), recent

    def bought(lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
        window = buys[(buys["ts"] >= lo) & (buys["ts"] < hi)]
        out = np.zeros((len(customers), len(categories)), dtype=np.float32)
        out[customers.get_indexer(window["customer_id"]), window["code"].to_numpy()] = 1.0
        return out

    frames, recents, labels = [], [], []
    for at in starts:
        frame, recent = state(at)
        frames.append(frame)
        recents.append(recent)
        labels.append(bought(at, at + horizon))
    serving_frame, _ = state(split_at)
    train_x, serving_x = _standardise(pd.concat(frames, ignore_index=True), serving_frame)
    inputs = HeadInputs(train_x, np.vstack(recents), np.vstack(labels), categories)
    return inputs, serving_x


def _standardise(train: pd.DataFrame, serving: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Log-scale heavy-tailed columns, flag missing values, standardise with the training rows."""
    columns = {}
    for name in train.columns:
        heavy = train[name].abs().max() > 10  # counts, money, days
        for part, frame in (("train", train), ("serving", serving)):
            x = frame[name].to_numpy(float)
            columns.setdefault(part, {})[name] = np.sign(x) * np.log1p(np.abs(x)) if heavy else x
            if train[name].isna().any():
                columns[part][f"{name}_missing"] = np.isnan(x).astype(float)
    train_x, serving_x = pd.DataFrame(columns["train"]), pd.DataFrame(columns["serving"])
    mean, std = train_x.mean(), train_x.std(ddof=0)
    std = std.where(std > 0, 1.0)
    return tuple(((x - mean) / std).fillna(0.0).to_numpy(np.float32) for x in (train_x, serving_x))


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate_scores(
    score_fn, prep: Prepared, ks: tuple[int, ...] = RANKING_KS, chunk: int = 4096
) -> dict[str, float]:
    """Rank the whole catalogue with ``score_fn(rows) -> (n, n_items)``, training items excluded."""
    tops = []
    for start in range(0, len(prep.test_rows), chunk):
        rows = prep.test_rows[start : start + chunk]
        scores = score_fn(np.maximum(rows, 0))
        scores = np.where((rows >= 0)[:, None], scores, scores.mean(0, keepdims=True))  # unknown: average
        excluded = [prep.owned.row(r) if r >= 0 else np.zeros(0, np.int64) for r in rows]
        tops.append(top_k(scores, excluded, max(ks)))
    return ranking_metrics(np.vstack(tops), prep.relevant, len(prep.item_ids), ks)


def evaluate_retrieval(
    retrieval: Retrieval, prep: Prepared, ks: tuple[int, ...] = RANKING_KS
) -> dict[str, float]:
    """Rank through the served path (FAISS + filters; inactive items allowed, as for baselines).

    Works for any bundle (the champion's too): customers and items are matched by id.
    """
    ids = prep.item_ids
    rows = prep.test_rows
    n_recent = int(retrieval.bundle.meta.get("config", {}).get("tt_history_len", 50))
    recent = [ids[prep.recent.row(r)[:n_recent]] if r >= 0 else () for r in rows]
    owned = [ids[prep.owned.row(r)] if r >= 0 else () for r in rows]
    filters = BusinessFilters(exclude_owned=True, only_active=False)
    recs = retrieval.recommend_arrays(prep.test_customers, max(ks), filters, recent, owned)
    served_ids = retrieval.bundle.item_ids
    top_ids = np.where(recs.items >= 0, served_ids[np.maximum(recs.items, 0)], None)
    top = pd.Index(ids).get_indexer(top_ids.reshape(-1)).reshape(top_ids.shape)
    return ranking_metrics(top, prep.relevant, len(ids), ks)


def oracle_metrics(data: Path, prep: Prepared, ks: tuple[int, ...] = RANKING_KS) -> dict[str, float] | None:
    """The simulator's true-taste ranking on the same test customers (None without truth/)."""
    if not (Path(data) / "truth").is_dir():
        return None
    from features.synth import oracle_recommendations

    ids = prep.item_ids
    exclude = {
        c: set(ids[prep.owned.row(r)]) if r >= 0 else set()
        for c, r in zip(prep.test_customers, prep.test_rows, strict=True)
    }
    recs = oracle_recommendations(data, list(prep.test_customers), max(ks), exclude)
    index = pd.Index(ids)
    top = np.full((len(prep.test_customers), max(ks)), -1, dtype=np.int64)
    for i, c in enumerate(prep.test_customers):
        found = index.get_indexer(recs.get(c, []))
        top[i, : len(found)] = found
    return ranking_metrics(top, prep.relevant, len(ids), ks)


# ---------------------------------------------------------------------------------------------
# plots


def comparison_plot(metrics: dict[str, dict[str, float]], k: int = HEADLINE_K):
    """Bars of Recall, NDCG, HitRate and coverage @k for each model, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["recall", "ndcg", "hit_rate", "coverage"]
    models = list(metrics)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        values = [metrics[model].get(f"{n}_at_{k}", 0.0) for n in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=model)
    ax.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2)
    ax.set_xticklabels([f"{n}@{k}" for n in names])
    ax.legend()
    ax.set_title("holdout ranking metrics, whole catalogue, owned items excluded")
    fig.tight_layout()
    return fig


def loss_plot(losses: list[float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("in-batch softmax loss")
    ax.set_title("two-tower training")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# the job


def train_two_tower(con, prep: Prepared, cfg: RecommenderTrainConfig, say=None):
    """Fit the two-tower model and export it; returns (task, retrieval, losses, seconds)."""
    tt = TwoTowerConfig(
        dim=cfg.dim,
        epochs=cfg.epochs,
        temperature=cfg.temperature,
        history_len=cfg.history_len,
        seed=cfg.seed,
        refine_l2=cfg.refine_l2,
    )
    inputs, feature_names = tower_inputs(con, prep, tt)
    task = TwoTowerTrainTask(inputs, tt)
    start = time.perf_counter()
    on_epoch = (lambda e, loss: say(f"two-tower epoch {e + 1}/{tt.epochs}: loss {loss:.4f}")) if say else None
    losses = task.fit(on_epoch)
    offsets = intent = None
    # the refinement fits a softmax *within* categories, so it goes with the head that weighs the
    # categories; alone (a random split, where no later window exists) it lost 0.04 of NDCG@10 on
    # MovieLens-100k in a probe
    head = head_inputs(con, prep) if cfg.category_head else None
    if head is not None:
        say and say(f"category head on {len(head[0].bought):,} customer windows")
        head_task = CategoryHeadTask(head[0], tt)
        head_task.fit()
        intent = head_task.export(head[1])
        if cfg.refine_l2 > 0:
            say and say(f"refining {inputs.n_customers:,} customers on their own interactions")
            offsets = refine_customers(task, prep.matrix, inputs.item_category)
    seconds = time.perf_counter() - start
    counts = np.asarray((prep.matrix > 0).sum(axis=0)).ravel()
    bundle = export_bundle(
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
    return task, Retrieval(bundle), losses, seconds


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
    task, retrieval, losses, train_seconds = train_two_tower(con, prep, cfg, say)
    metrics = {"two_tower": evaluate_retrieval(retrieval, prep)}
    if retrieval.bundle.customer_offset is not None or retrieval.bundle.intent is not None:
        metrics["two_tower_towers_only"] = evaluate_retrieval(Retrieval(retrieval.bundle.towers_only()), prep)
    baselines = [Popularity(), CoOccurrence(), ALS(seed=cfg.seed)] if cfg.baselines else []
    for model in baselines:
        say(f"fitting baseline {model.name}")
        model.fit(prep.matrix)
        metrics[model.name] = evaluate_scores(model.scores, prep)
    oracle = oracle_metrics(cfg.data, prep)
    if oracle is not None:
        metrics["oracle"] = oracle
    result = RecommenderResult(split.info, metrics, losses, rows, train_seconds=train_seconds)
    result.extra["interactions_per_second"] = (
        len(task.inputs.example_item) * len(losses) / max(train_seconds, 1e-9)
    )
    log_run(cfg, prep, task, retrieval, result, say)
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def log_run(cfg, prep: Prepared, task, retrieval: Retrieval, result: RecommenderResult, say) -> None:
    """Log parameters, metrics, plots and the pyfunc model; register it as challenger if asked."""
    import tempfile

    from mlflow.models import infer_signature
    from mlflow.types.schema import Array, ColSpec, Schema

    import mlflow
    from serving.retrieval import RecommenderModel
    from training import registry

    fingerprint = input_fingerprint(cfg.data)
    key = registry.holdout_key(data=fingerprint, **prep.split.info)
    registry.experiment(cfg.experiment)
    headline = f"ndcg_at_{HEADLINE_K}"
    with mlflow.start_run(run_name=f"recommender {cfg.split}") as run:
        mlflow.log_params(task.cfg.params() | {f"split_{k}": v for k, v in prep.split.info.items()})
        mlflow.log_params({f"rows_{k}": v for k, v in result.rows.items()})
        if cfg.baselines:
            mlflow.log_params(ALS(seed=cfg.seed).params())
        mlflow.set_tags(
            {"feature_set": FEATURE_SET_NAME, "feature_set_version": feature_set_version(),
             "data_fingerprint": fingerprint, "data_dir": str(Path(cfg.data).resolve())}
        )  # fmt: skip
        for epoch, loss in enumerate(result.losses):
            mlflow.log_metric("two_tower_train_loss", loss, step=epoch + 1)
        for model, values in result.metrics.items():
            mlflow.log_metrics({f"{model}_{k}": v for k, v in values.items()})
        mlflow.log_metric("two_tower_train_seconds", result.train_seconds)
        mlflow.log_figure(comparison_plot(result.metrics), "ranking_comparison.png")
        mlflow.log_figure(loss_plot(result.losses), "training_curve.png")
        result.run_id = run.info.run_id
        if not cfg.log_model:
            return
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = retrieval.bundle.save(Path(tmp) / "bundle")
            example = pd.DataFrame(
                {
                    "customer_id": [str(prep.customer_ids[0]), "unknown-customer"],
                    "recent_items": [list(map(str, prep.item_ids[:2])), []],
                }
            )
            output = retrieval.to_frame(
                retrieval.recommend_arrays(example["customer_id"].tolist(), HEADLINE_K)
            )
            signature = infer_signature(example, output, params={"k": HEADLINE_K})
            signature.inputs = Schema(  # recent_items is optional: without it the model's own are used
                [ColSpec("string", "customer_id"), ColSpec(Array("string"), "recent_items", required=False)]
            )
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RecommenderModel(),
                artifacts={"bundle": str(bundle_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
            )
        result.model_uri = info.model_uri
        if cfg.register_model:
            champion = registry.get_alias(MODEL_NAME, registry.CHAMPION)
            if champion is not None:
                say(f"scoring champion v{champion.version} on the same holdout")
                champ = mlflow.pyfunc.load_model(champion.uri).unwrap_python_model()
                result.champion_metric = evaluate_retrieval(champ.retrieval, prep)[headline]
                mlflow.log_metric(f"champion_{headline}", result.champion_metric)
    if cfg.register_model:
        version = registry.register_challenger(
            result.model_uri, MODEL_NAME, key, headline, result.metrics["two_tower"][headline],
            result.champion_metric, description=f"two-tower, {cfg.split} split {prep.split.info}",
        )  # fmt: skip
        result.registered_version = version.version


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "faiss-cpu", "numpy", "pandas", "pyarrow")]


def write_metrics_json(path: Path, result: RecommenderResult, k: int = HEADLINE_K) -> dict[str, Any]:
    """The holdout figures in the format of DESIGN.md section 10 (headline K), plus all K."""
    headline = {
        name: {m: round(values[f"{m}_at_{k}"], 6) for m in ("recall", "ndcg", "hit_rate", "coverage")}
        for name, values in result.metrics.items()
    }
    doc: dict[str, Any] = {
        "model": "recommender",
        "k": k,
        "split": result.split.get("split"),
        # the models of DESIGN.md section 10 (and the oracle); parts of the two-tower model alone
        # go under "ablations", so that "the best baseline" stays a choice among the baselines
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
