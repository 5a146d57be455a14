"""Audience jobs with the registered champions: top-k recommendations (``crm recommend``) and the
ranked churn list (``crm churn-list``, the demo pipeline's last step), written as CSV or Parquet."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.errors import UserError
from features.store import Store
from features.vocab import ChurnSort, LifecycleStage
from serving.filters import BusinessFilters
from serving.pyfunc import RecommenderModel
from serving.schemas import MAX_K

if TYPE_CHECKING:
    from features.online import OnlineSnapshot
    from serving.churn_scoring import ChurnModel
    from serving.value_model import ValueModel

OUTPUT_SUFFIXES = (".csv", ".parquet")
MAX_PREVIEW = 10  # rows of the first customer that `crm recommend` shows


def _check_output(out: Path) -> None:
    if out.suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"Output {out} must end in .csv or .parquet.")


def _use_store(store: Store) -> None:
    import mlflow

    mlflow.set_tracking_uri(store.tracking)
    mlflow.set_registry_uri(store.tracking)


def read_audience(path: Path) -> list[str]:
    """Customer ids from a CSV or Parquet file with a ``customer_id`` column."""
    if not path.is_file():
        raise UserError(f"Audience file {path} does not exist: expected a CSV or Parquet file.")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
        raise UserError(f"Audience file {path} could not be read as CSV or Parquet ({exc}).") from None
    if "customer_id" not in frame.columns:
        raise UserError(f"Audience file {path} has no customer_id column (found {', '.join(frame.columns)}).")
    return frame["customer_id"].dropna().astype(str).drop_duplicates().tolist()


# ---------------------------------------------------------------------------------------------
# recommendations for an audience


class BatchRecommendConfig(BaseModel):
    """What ``crm recommend`` does."""

    model_config = ConfigDict(extra="forbid")

    customers: Path
    out: Path
    k: int = 10
    model_uri: str = "models:/recommender@champion"
    online_snapshot: Path | None = None
    categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    store: Store = Field(default_factory=Store)


@dataclass
class BatchRecommendResult:
    out: Path
    customers: int
    rows: int
    fallback: int
    seconds: float
    preview: pd.DataFrame | None = None  # the first customer's rows, as written


def load_served_model(model_uri: str, store: Store) -> RecommenderModel:
    """The recommender pyfunc behind ``model_uri`` (an alias URI, a version URI or a run URI)."""
    from mlflow.exceptions import MlflowException

    import mlflow

    _use_store(store)
    try:
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise UserError(
            f"No recommender at {model_uri} ({str(exc).splitlines()[0]}): train one with"
            " `crm train recommender --register` and `crm promote recommender`, or pass --model-uri."
        ) from None
    if not isinstance(model, RecommenderModel):
        raise UserError(f"The model at {model_uri} is not a recommender.")
    return model


def batch_recommend(cfg: BatchRecommendConfig) -> BatchRecommendResult:
    """Top-k for every customer of an audience file, vectorised, written as CSV or Parquet: one
    row per item with its category, subcategory, price, score (the chance among the candidates,
    as the API's) and reason.

    With an online snapshot, its owned and recent items replace the model's for the customers it
    knows, and its catalogue and purchase dates word the rows (as in the service); without one,
    subcategory and price are empty and the reasons read the model's training purchases.
    """
    start = time.perf_counter()
    _check_output(cfg.out)
    if not 1 <= cfg.k <= MAX_K:
        raise UserError(f"k must lie between 1 and {MAX_K} (the API's limit), got {cfg.k}.")
    ids = read_audience(cfg.customers)
    retrieval = load_served_model(cfg.model_uri, cfg.store).retrieval
    filters = BusinessFilters(True, True, cfg.categories, cfg.exclude_categories)
    if cfg.online_snapshot:
        from features.online import load_online_snapshot
        from serving.reasons import Presenter

        snapshot = load_online_snapshot(cfg.online_snapshot)
        lists = retrieval.fresh_lists(ids, snapshot)
        recs = replace(
            retrieval.recommend_rows(*lists, cfg.k, filters), customer_ids=np.asarray(ids, dtype=object)
        )
        # the snapshot's catalogue (subcategory, price) and purchase dates, as the service answers
        presenter = Presenter.from_snapshot(retrieval.bundle, snapshot)
        summaries = [presenter.summary(c, r) for c, r in zip(ids, lists[0].tolist(), strict=True)]
        frame = presenter.frame(recs, summaries, presenter.now())
    else:
        recs = retrieval.recommend_arrays(ids, cfg.k, filters)
        frame = retrieval.to_frame(recs)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    if cfg.out.suffix == ".parquet":
        frame.to_parquet(cfg.out, index=False)
    else:
        frame.to_csv(cfg.out, index=False)
    first = frame["customer_id"].iloc[0] if len(frame) else None
    return BatchRecommendResult(
        cfg.out, len(ids), len(frame), int(recs.fallback.sum()), time.perf_counter() - start,
        frame[frame["customer_id"] == first].head(MAX_PREVIEW),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the ranked churn list


class ListConfig(BaseModel):
    """What both customer lists share: the snapshot, the segment, the models, the output."""

    model_config = ConfigDict(extra="forbid")

    out: Path
    snapshot: Path  # the online snapshot folder
    top: int = Field(1000, ge=1)
    min_probability: float = Field(0.0, ge=0.0, le=1.0)
    tiers: list[str] | None = None
    regions: list[str] | None = None
    owns: list[str] | None = None
    model_uri: str = "models:/churn@champion"
    # the forecast that values each customer; without a registered value model, past-year revenue
    value_model_uri: str | None = "models:/value@champion"
    store: Store = Field(default_factory=Store)


class ChurnListConfig(ListConfig):
    """What ``crm churn-list`` (and the demo's churn-list step) does."""

    stages: list[LifecycleStage] | None = None  # None: every lifecycle stage but lapsed
    sort: ChurnSort = "expected_loss"


@dataclass
class ChurnListResult:
    out: Path
    customers: int
    value_at_risk: float
    value_model: str | None  # the pinned value model URI; None: values are past-year revenue


def load_value_model(model_uri: str | None, store: Store) -> tuple[ValueModel | None, str | None]:
    """The value model behind ``model_uri`` and its pinned URI, or (None, None) when the registry
    has no such model (customer values are then the past-year revenue)."""
    from serving import value_model

    loaded = value_model.load_value_model(model_uri, store.tracking)
    return (None, None) if loaded is None else (loaded.model, loaded.uri)


def write_churn_list(cfg: ChurnListConfig) -> ChurnListResult:
    """Score the online snapshot with the churn model and write the ranked list (atomically)."""
    from serving.churn_scoring import churn_list

    online, model, value_model, value_uri = _list_inputs(cfg)
    ranked = churn_list(
        model, online.snapshot.reset_index(drop=True), min_probability=cfg.min_probability, limit=cfg.top,
        sort=cfg.sort, tiers=cfg.tiers, regions=cfg.regions, owns=cfg.owns, stages=cfg.stages,
        value_model=value_model,
    )  # fmt: skip
    money = ["customer_value", "value_at_risk"]
    ranked[money] = ranked[money].round(2)
    write_list(ranked, cfg.out)
    return ChurnListResult(cfg.out, len(ranked), float(ranked["value_at_risk"].sum()), value_uri)


def write_list(ranked: pd.DataFrame, out: Path) -> None:
    """A ranked customer list as CSV (reasons joined by "; ") or Parquet, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp" + out.suffix)
    if out.suffix == ".csv":
        ranked.assign(top_reasons=ranked["top_reasons"].map("; ".join)).to_csv(tmp, index=False)
    else:
        ranked.to_parquet(tmp, index=False)
    tmp.replace(out)  # a reader never sees half a list


def _list_inputs(cfg: ListConfig) -> tuple[OnlineSnapshot, ChurnModel, ValueModel | None, str | None]:
    """The online snapshot, the churn model and the value model (with its pinned URI) of a list."""
    from features.online import load_online_snapshot

    _check_output(cfg.out)
    _use_store(cfg.store)
    online = load_online_snapshot(cfg.snapshot)
    return (online, _load_churn_model(cfg.model_uri), *load_value_model(cfg.value_model_uri, cfg.store))


def _load_churn_model(model_uri: str) -> ChurnModel:
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's registry state
        raise UserError(f"Cannot load {model_uri}: {str(exc).splitlines()[0]}") from None


# ---------------------------------------------------------------------------------------------
# the win-back list


class WinbackListConfig(ListConfig):
    """What ``crm winback-list`` does: ``min_probability`` is the chance of coming back, the value
    model gives it and the value, the churn model the reasons and actions."""


@dataclass
class WinbackListResult:
    out: Path
    customers: int
    winback_value: float
    value_model: str


def write_winback_list(cfg: WinbackListConfig) -> WinbackListResult:
    """Rank the snapshot's lapsed customers by return probability x forecast value and write the list."""
    from serving.churn_scoring import winback_list

    online, model, value_model, value_uri = _list_inputs(cfg)
    if value_model is None:
        raise UserError(
            f"The win-back list needs a value model and there is none at {cfg.value_model_uri}:"
            " `crm train value --register`, then `crm promote value`."
        )
    ranked = winback_list(
        model, online.snapshot.reset_index(drop=True), value_model, min_probability=cfg.min_probability,
        limit=cfg.top, tiers=cfg.tiers, regions=cfg.regions, owns=cfg.owns,
    )  # fmt: skip
    money = ["customer_value", "winback_value"]
    ranked[money] = ranked[money].round(2)
    write_list(ranked, cfg.out)
    return WinbackListResult(cfg.out, len(ranked), float(ranked["winback_value"].sum()), value_uri)


# ---------------------------------------------------------------------------------------------
# both lists of a whole snapshot, for measuring them


@dataclass
class ScoredLists:
    """Every snapshot customer scored as the lists score them (``customer_id, churn_probability,
    customer_value, value_at_risk``), and the win-back ranking of the lapsed ones (None without a
    value model)."""

    scored: pd.DataFrame
    winback: pd.DataFrame | None
    value_model: str | None


def score_lists(
    snapshot: pd.DataFrame,
    store: Store,
    model_uri: str = "models:/churn@champion",
    value_model_uri: str | None = "models:/value@champion",
) -> ScoredLists:
    """Score a snapshot with the churn model and the value model as the retention and win-back
    lists do (no reasons: this is for measuring the rankings)."""
    from serving.churn_scoring import customer_values, winback_list

    _use_store(store)
    frame = snapshot.reset_index(drop=True)
    model = _load_churn_model(model_uri)
    value_model, value_uri = load_value_model(value_model_uri, store)
    scored = model.score(frame, with_reasons=False, value=customer_values(value_model, frame))
    winback = None
    if value_model is not None and "lifecycle_stage" in frame:
        lapsed = frame[frame["lifecycle_stage"] == "lapsed"]
        winback = winback_list(model, lapsed, value_model, limit=max(len(lapsed), 1), with_reasons=False)
    return ScoredLists(scored, winback, value_uri)
