"""Churn model: LightGBM on point-in-time snapshots, tuned with Optuna, calibrated, tracked.

Time layout for a holdout as-of date ``T`` and horizon ``h``:

- validation as-of ``V = T - h``: its label window ``[V, T)`` ends where the holdout's begins;
- training as-of dates ``V - h - k * step`` for ``k = 0..n_train_dates - 1``: every training label
  window ends by ``V``. With training labels reaching past ``V``, a customer's later purchases
  labelled both folds, and the search rewarded models that recognised customers (validation AUC
  rose with tree size while the holdout fell) and picked the worst of them. Where the history
  is too short for that (CDNOW), ``V - k * step`` for ``k = 1..n_train_dates``, overlapping;
- holdout: snapshot and labels at ``T``. The model never sees an event at or after ``T``.

The label (:mod:`features.labels`) is ``activity`` (no activity event in the horizon, over the
customers active in the ``engaged_days`` before) where the events carry engagement, ``purchase``
(no purchase in the horizon) for purchase-only logs, or the one ``label`` names.

Optuna tunes on the validation fold (pruned with ``optuna_integration``'s LightGBM callback). The
study of a holdout lives in the store's Optuna storage under a name that says what it tunes
(:func:`study_name`); a later job on the same holdout resumes it and runs the trials it asks for
on top, one job at a time (a lock of the store). Each trial is an MLflow child run of the job's
run. The final model is calibrated (Platt) on the validation fold and evaluated once on the
holdout, beside a recency-only score and, for simulated data, the oracle.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score

from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.families import categorical_features, model_features
from features.labels import ENGAGED_DAYS, check_label_window, churn_training_set, default_label
from features.snapshot import as_datetime
from features.store import Store
from features.vocab import ChurnLabel, Population
from serving.churn_scoring import Calibration, ChurnModel
from training import tracking
from training.lgb import booster_params
from training.metrics import classification_metrics

if TYPE_CHECKING:
    from collections.abc import Callable

    import optuna

# More inactivity or more service problems never lowers the risk (monotone in LightGBM).
MONOTONE_UP = (
    "days_since_last_purchase",
    "days_since_last_event",
    "service_tickets_90d",
    "service_tickets_365d",
    "recency_over_purchase_gap",
)
MIN_HISTORY_DAYS = 30
MODEL_NAME = "churn"
HEADLINE_METRIC = "roc_auc"  # the figure the summary shows and the promotion gate compares
# What the logged model imports to load and score (besides mlflow and cloudpickle).
REQUIREMENTS = ("lightgbm", "numpy", "pandas")
LABEL_PHRASES = {
    "activity": "shows no activity (no purchase, visit, cart, post, push open, coupon or ticket)",
    "purchase": "makes no purchase",
}


@dataclass
class ChurnParams:
    """LightGBM hyperparameters (the defaults are also the first Optuna trial)."""

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_rounds: int = 600
    early_stopping: int = 40
    seed: int = 42
    num_threads: int = 2

    def lgb(self, features: list[str]) -> dict:
        """LightGBM's parameters for a model over ``features`` (their monotone constraints)."""
        monotone = [1 if f in MONOTONE_UP else 0 for f in features]
        return booster_params(self, "binary", monotone) | {"metric": ["auc", "binary_logloss"]}


class ChurnTrainConfig(BaseModel):
    """What ``crm train churn`` runs."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    as_of: datetime | date | str  # the holdout as-of date
    horizon_days: int = Field(90, gt=0)
    lookback_days: int = Field(365, gt=0)
    population: Population = "active"
    label: ChurnLabel | None = None  # None: activity where the events carry engagement, else purchase
    engaged_days: int = Field(ENGAGED_DAYS, gt=0)  # the activity label's population window
    trials: int = Field(20, ge=1)
    n_train_dates: int = Field(3, ge=1)
    date_step_days: int = Field(30, gt=0)
    register_model: bool = False  # --register
    metrics_json: Path | None = None
    seed: int = 42
    experiment: str = "churn"
    store: Store = Field(default_factory=Store)

    def windows(self) -> dict:
        """The label, its windows and population: what the training sets and the holdout key share
        (call on a configuration whose label is set, see :meth:`with_label`)."""
        return dict(
            horizon_days=self.horizon_days, lookback_days=self.lookback_days, population=self.population,
            label=self.label, engaged_days=self.engaged_days,
        )  # fmt: skip

    def with_label(self, con) -> ChurnTrainConfig:
        """This configuration with its label decided from the data where it was left to the data."""
        return self if self.label else self.model_copy(update={"label": default_label(con)})


@dataclass
class ChurnResult:
    """Holdout figures, the dates and sizes of the sets, the chosen parameters, the run."""

    metrics: dict[str, float]
    as_of_dates: dict[str, list[str]]
    rows: dict[str, int]
    params: dict
    run_id: str
    model_uri: str
    registered_version: str | None = None
    champion_metric: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    label: ChurnLabel = "purchase"
    # the version holding alias challenger once this run registered (a later job's, if one was faster)
    challenger_version: str | None = None
    study: str = ""


# ---------------------------------------------------------------------------------------------
# data


def schedule(cfg: ChurnTrainConfig, data_start: datetime) -> tuple[list[datetime], datetime, datetime]:
    """(training as-of dates, validation as-of, holdout as-of)."""
    holdout = as_datetime(cfg.as_of)
    validation = holdout - timedelta(days=cfg.horizon_days)
    earliest = data_start + timedelta(days=MIN_HISTORY_DAYS)
    step = timedelta(days=cfg.date_step_days)
    # the latest training date: its label window ends at V; where the history is too short to
    # keep the folds apart (CDNOW: one year, 181 days ahead), one step before V
    for last in (validation - timedelta(days=cfg.horizon_days), validation - step):
        train = sorted(d for d in (last - k * step for k in range(cfg.n_train_dates)) if d >= earliest)
        if train:
            break
    if validation < earliest or not train:
        raise UserError(
            f"Not enough history before as-of {holdout:%Y-%m-%d} for a {cfg.horizon_days}-day horizon:"
            f" validation would be at {validation:%Y-%m-%d} and training earlier still, but the data"
            f" starts {data_start:%Y-%m-%d}; choose a later as-of date or a shorter horizon."
        )
    return train, validation, holdout


def feature_columns() -> list[str]:
    """The model's inputs: the declared features of the families that are model inputs."""
    return model_features()


def _xy(frame: pd.DataFrame, model: ChurnModel) -> tuple[np.ndarray, np.ndarray]:
    return model.matrix(frame), frame["churned"].to_numpy(dtype=int)


def categorical_levels(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Levels of each categorical feature as seen in training (unseen levels score as missing)."""
    inputs = set(feature_columns())
    return {
        c: sorted(frame[c].dropna().astype(str).unique().tolist())
        for c in categorical_features()
        if c in inputs
    }


# ---------------------------------------------------------------------------------------------
# training


def fit(
    params: ChurnParams, train: pd.DataFrame, valid: pd.DataFrame, callbacks: list | None = None
) -> tuple[ChurnModel, int]:
    """Fit LightGBM with early stopping on ``valid``; calibrate on ``valid``. Returns (model, rounds)."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression

    features = feature_columns()
    levels = categorical_levels(train)
    shell = ChurnModel("", features, levels, Calibration())
    x_tr, y_tr = _xy(train, shell)
    x_va, y_va = _xy(valid, shell)
    cat_idx = [features.index(c) for c in levels]
    d_tr = lgb.Dataset(x_tr, y_tr, feature_name=features, categorical_feature=cat_idx, free_raw_data=False)
    d_va = lgb.Dataset(x_va, y_va, reference=d_tr)
    booster = lgb.train(
        params.lgb(features),
        d_tr,
        num_boost_round=params.max_rounds,
        valid_sets=[d_va],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(params.early_stopping, verbose=False)] + (callbacks or []),
    )
    raw = booster.predict(x_va, raw_score=True, num_iteration=booster.best_iteration)
    platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y_va)
    model = ChurnModel(
        booster.model_to_string(num_iteration=booster.best_iteration),
        features,
        levels,
        Calibration(float(platt.coef_[0, 0]), float(platt.intercept_[0])),
        num_threads=params.num_threads,
    )
    return model, int(booster.best_iteration or params.max_rounds)


@dataclass
class Tuning:
    """What a search did: the best parameters, the study, and its trials before and after."""

    params: ChurnParams
    study: str
    storage: str
    trials_before: int
    trials_after: int
    best_value: float


def study_name(cfg: ChurnTrainConfig, holdout: datetime, fingerprint: str) -> str:
    """The Optuna study of one holdout, in words: everything that changes the objective (data,
    dates, label, windows, population) is in it (call on a configuration whose label is set)."""
    window = cfg.engaged_days if cfg.label == "activity" else cfg.lookback_days
    who = "all customers" if cfg.population == "all" else f"active in the last {window} days"
    return (
        f"churn {holdout:%Y-%m-%d}: {cfg.horizon_days}-day {cfg.label} label, {who},"
        f" {cfg.n_train_dates} training dates {cfg.date_step_days} days apart, data {fingerprint[:8]}"
    )


def tune(cfg: ChurnTrainConfig, objective: Callable[[optuna.Trial], float], name: str, say=None) -> Tuning:
    """Optuna TPE search (maximising ``objective``), pruned: ``cfg.trials`` new trials on top of
    those the stored study ``name`` already has, each logged as a child run of the active MLflow run.

    Jobs on the same study take turns (a lock of the store), so each one's sampler sees the
    trials before it; ``say`` is told how many there were.
    """
    say = say or (lambda msg: None)
    with tracking.store_lock(cfg.store, f"optuna study {name}", say):
        study = _study(cfg, name)
        before = len([t for t in study.trials if t.state.is_finished()])
        stored = f"{before} trials stored, running {cfg.trials} more" if before else f"{cfg.trials} trials"
        say(f"tuning with Optuna: study {name!r}, {stored}")
        study.optimize(objective, n_trials=cfg.trials, callbacks=[_trial_runs()], show_progress_bar=False)
        after = len([t for t in study.trials if t.state.is_finished()])
    best = study.best_trial
    params = ChurnParams(**{k: best.params[k] for k in _SPACE}, seed=cfg.seed)
    return Tuning(params, name, tracking.storage_label(cfg.store.optuna), before, after, float(best.value))


def _study(cfg: ChurnTrainConfig, name: str) -> optuna.Study:
    """The stored study ``name`` (created on first use, with the defaults as its first trial)."""
    import optuna

    cfg.store.root.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tracking.store_lock(cfg.store, "optuna storage"):  # a fresh storage creates its tables once
        study = optuna.create_study(
            study_name=name,
            storage=cfg.store.optuna,
            direction="maximize",
            load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_warmup_steps=20),
        )
    # a resumed search must not draw its first trials again: the seed moves on with the trials stored
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(study.trials))
    if not study.trials:
        study.enqueue_trial({k: v for k, v in asdict(ChurnParams()).items() if k in _SPACE})
    return study


def _trial_runs():
    """optuna_integration's MLflow callback: each trial a child run of the active run, with its
    parameters, its validation AUC and its attributes (the boosting rounds) as tags."""
    import warnings

    from optuna_integration import MLflowCallback

    with warnings.catch_warnings():  # deprecated upstream since 4.9, still shipped in the pinned 5.0
        warnings.simplefilter("ignore", FutureWarning)
        return MLflowCallback(
            metric_name="validation_roc_auc", create_experiment=False, mlflow_kwargs={"nested": True}
        )


def suggest(trial: optuna.Trial, seed: int) -> ChurnParams:
    """The search space: the parameters a trial suggests."""
    return ChurnParams(
        learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        num_leaves=trial.suggest_int("num_leaves", 8, 128, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 10, 400, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
        lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        seed=seed,
    )


def validation_objective(
    seed: int, train: pd.DataFrame, valid: pd.DataFrame
) -> Callable[[optuna.Trial], float]:
    """Validation AUC of the parameters a trial suggests, the rounds kept as a trial attribute."""
    from optuna_integration import LightGBMPruningCallback

    def validation_auc(trial: optuna.Trial) -> float:
        params = suggest(trial, seed)
        model, rounds = fit(params, train, valid, [LightGBMPruningCallback(trial, "auc", "valid")])
        trial.set_user_attr("rounds", rounds)
        return classification_metrics(valid["churned"], model.probability(valid))["roc_auc"]

    return validation_auc


_SPACE = (
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "lambda_l2",
)


# ---------------------------------------------------------------------------------------------
# evaluation and plots


RECENCY_FEATURE = {"purchase": "days_since_last_purchase", "activity": "days_since_last_event"}


def recency_score(frame: pd.DataFrame, label: ChurnLabel = "purchase") -> np.ndarray:
    """The recency-only baseline: days since the last purchase (the activity label: since the last
    event); never = longest."""
    days = frame[RECENCY_FEATURE[label]].to_numpy(dtype=float)
    return np.where(np.isnan(days), np.nanmax(np.append(days, 0)) + 1, days)


def oracle_leaving_scores(data: Path, as_of: datetime, horizon_days: int) -> pd.DataFrame:
    """The simulator's chance that a customer has left by ``as_of + horizon``: 1 for a customer gone
    before ``as_of``, else ``1 - (1 - h) ** weeks`` with the weekly hazard ``h`` of the month of
    ``as_of`` (the oracle of the activity label; the engagement rates are not in the truth, so it
    ranks by leaving, not by the exact chance of a quiet horizon)."""
    from features.synth import true_customers

    as_of = pd.Timestamp(as_of)
    customers = true_customers(data)[["customer_id", "churn_ts"]]
    monthly = pd.read_parquet(Path(data) / "truth" / "monthly")
    month = monthly.loc[
        monthly["month"] == as_of.to_period("M").to_timestamp(), ["customer_id", "weekly_hazard"]
    ]
    frame = customers.merge(month, on="customer_id", how="left")
    hazard = frame["weekly_hazard"].fillna(0).to_numpy(float)
    leaving = 1 - (1 - hazard) ** max(1, round(horizon_days / 7))
    gone = (frame["churn_ts"] < as_of).to_numpy(dtype=bool)
    return pd.DataFrame({"customer_id": frame["customer_id"], "oracle_score": np.where(gone, 1.0, leaving)})


def oracle_auc(
    data: Path, holdout: pd.DataFrame, as_of: datetime, horizon: int, label: ChurnLabel = "purchase"
) -> float | None:
    """The AUC of the simulator's true churn scores for ``label`` on the holdout (None without truth/)."""
    if not (Path(data) / "truth").is_dir():
        return None
    from features.synth import oracle_churn_scores

    oracle = oracle_leaving_scores if label == "activity" else oracle_churn_scores
    scores = oracle(data, as_of, horizon)
    merged = holdout[["customer_id", "churned"]].merge(scores, on="customer_id", how="inner")
    return classification_metrics(merged["churned"], merged["oracle_score"])["roc_auc"]


def plots(y: np.ndarray, p: np.ndarray, model: ChurnModel) -> dict:
    """ROC, cumulative gain, calibration and feature importance figures, by file name."""
    return {
        "roc.png": _roc_figure(y, p),
        "gain.png": _gain_figure(y, p),
        "calibration.png": _calibration_figure(y, p),
        "feature_importance.png": _importance_figure(model),
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _roc_figure(y: np.ndarray, p: np.ndarray):
    from sklearn.metrics import roc_curve

    fig, ax = _pyplot().subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend()
    return fig


def _gain_figure(y: np.ndarray, p: np.ndarray):
    fig, ax = _pyplot().subplots(figsize=(5, 5))
    order = np.argsort(-p)
    gain = np.cumsum(y[order]) / max(1, y.sum())
    share = np.arange(1, len(y) + 1) / len(y)
    ax.plot(share, gain, label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random")
    ax.set(xlabel="share of customers contacted", ylabel="share of churners reached", title="Cumulative gain")
    ax.legend()
    return fig


def _calibration_figure(y: np.ndarray, p: np.ndarray):
    from sklearn.calibration import calibration_curve

    fig, ax = _pyplot().subplots(figsize=(5, 5))
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed churn rate", title="Calibration (holdout)")
    ax.legend()
    return fig


def _importance_figure(model: ChurnModel):
    gain = pd.Series(model.booster().feature_importance("gain"), index=model.features).nlargest(20)[::-1]
    fig, ax = _pyplot().subplots(figsize=(6, 6))
    gain.plot.barh(ax=ax, title="Feature importance (gain)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# the job


@dataclass
class Folds:
    """The training, validation and holdout sets of one holdout date, and their as-of dates."""

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    train_dates: list[datetime]
    valid_date: datetime
    holdout_date: datetime
    label: ChurnLabel = "purchase"

    def as_of_dates(self) -> dict[str, list[str]]:
        """The as-of dates of each set as YYYY-MM-DD strings."""
        return {
            "train": [f"{d:%Y-%m-%d}" for d in self.train_dates],
            "validation": [f"{self.valid_date:%Y-%m-%d}"],
            "holdout": [f"{self.holdout_date:%Y-%m-%d}"],
        }

    def rows(self) -> dict[str, int]:
        """The number of rows of each set."""
        return {"train": len(self.train), "validation": len(self.valid), "holdout": len(self.holdout)}


def build_folds(con, cfg: ChurnTrainConfig, say) -> Folds:
    """Labelled snapshots at the scheduled dates; each set must hold both classes."""
    cfg = cfg.with_label(con)
    data_start = con.execute("SELECT min(ts) FROM events").fetchone()[0]
    train_dates, valid_date, holdout_date = schedule(cfg, data_start)
    check_label_window(con, holdout_date, cfg.horizon_days)  # the latest window: the user's date
    windows = cfg.windows()
    say(f"building training sets at {', '.join(f'{d:%Y-%m-%d}' for d in train_dates)}")
    train = churn_training_set(con, train_dates, **windows)
    valid = churn_training_set(con, [valid_date], **windows)
    say(f"building the holdout at {holdout_date:%Y-%m-%d}")
    holdout = churn_training_set(con, [holdout_date], **windows)
    for name, frame in (("training", train), ("validation", valid), ("holdout", holdout)):
        if frame["churned"].nunique() < 2:
            raise UserError(f"The {name} set has only one class: widen the population or change the dates.")
    return Folds(train, valid, holdout, train_dates, valid_date, holdout_date, cfg.label)


def holdout_metrics(cfg: ChurnTrainConfig, model: ChurnModel, folds: Folds) -> dict[str, float]:
    """The model's figures on the holdout, beside the recency baseline, the oracle and validation AUC."""
    holdout = folds.holdout
    y = holdout["churned"].to_numpy()
    metrics = classification_metrics(y, model.probability(holdout))
    metrics["baseline_recency_roc_auc"] = float(roc_auc_score(y, recency_score(holdout, folds.label)))
    oracle = oracle_auc(cfg.data, holdout, folds.holdout_date, cfg.horizon_days, folds.label)
    if oracle is not None:
        metrics["oracle_roc_auc"] = oracle
    valid = folds.valid
    validation = classification_metrics(valid["churned"], model.probability(valid))
    metrics["validation_roc_auc"] = validation["roc_auc"]
    return metrics


def run(cfg: ChurnTrainConfig, progress=None) -> ChurnResult:
    """Build the training sets, tune, fit, calibrate, evaluate, log to MLflow, optionally register.

    One MLflow run holds it all: the Optuna trials are its child runs, the sets its inputs.
    """
    import mlflow
    from training import registry

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    con = open_validated(cfg.data)
    cfg = cfg.with_label(con)
    say(f"label: {cfg.label}")
    folds = build_folds(con, cfg, say)
    fingerprint = input_fingerprint(cfg.data)
    name = study_name(cfg, folds.holdout_date, fingerprint)
    registry.experiment(cfg.experiment, cfg.store)
    with mlflow.start_run(run_name=f"churn {folds.holdout_date:%Y-%m-%d} h{cfg.horizon_days}") as parent:
        mlflow.set_tags(tracking.run_tags(cfg.data, fingerprint))
        log_datasets(cfg, folds)
        tuning = tune(cfg, validation_objective(cfg.seed, folds.train, folds.valid), name, say)
        model, rounds = fit(tuning.params, folds.train, folds.valid)
        metrics = holdout_metrics(cfg, model, folds)
        model_uri, champion_metric = log_run(cfg, model, tuning, rounds, folds, metrics)
    result = ChurnResult(
        metrics, folds.as_of_dates(), folds.rows(), asdict(tuning.params), parent.info.run_id, model_uri,
        label=cfg.label, study=name,
    )  # fmt: skip
    if cfg.register_model:
        key = registry.holdout_key(data=fingerprint, as_of=f"{folds.holdout_date:%Y-%m-%d}", **cfg.windows())
        version = registry.register_challenger(
            model_uri, MODEL_NAME, key, HEADLINE_METRIC, metrics[HEADLINE_METRIC], champion_metric,
            description=version_description(cfg, folds, metrics, tuning, champion_metric),
            store=cfg.store, say=say,
        )  # fmt: skip
        result.registered_version = version.version
        result.champion_metric = champion_metric
        holder = registry.get_alias(MODEL_NAME, registry.CHALLENGER, store=cfg.store)
        result.challenger_version = None if holder is None else holder.version
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def log_datasets(cfg: ChurnTrainConfig, folds: Folds) -> None:
    """The training, validation and holdout sets as inputs of the active run."""
    for frame, name, context in (
        (folds.train, "churn training snapshots", "training"),
        (folds.valid, "churn validation snapshot", "validation"),
        (folds.holdout, "churn holdout snapshot", "evaluation"),
    ):
        tracking.log_dataset(frame, name, context, cfg.data, targets="churned")


def log_run(
    cfg: ChurnTrainConfig, model: ChurnModel, tuning: Tuning, rounds: int, folds: Folds,
    metrics: dict[str, float],
) -> tuple[str, float | None]:  # fmt: skip
    """Into the active run: parameters, the study, holdout metrics, plots and the pyfunc model;
    with ``register_model`` also the champion's figure on this holdout. Returns (model URI,
    champion metric or None)."""
    import mlflow

    holdout = folds.holdout
    mlflow.log_params(asdict(tuning.params) | {"rounds": rounds, "trials": cfg.trials} | cfg.windows())
    mlflow.log_params({f"as_of_{k}": ",".join(v) for k, v in folds.as_of_dates().items()})
    mlflow.log_params({f"rows_{k}": v for k, v in folds.rows().items()})
    mlflow.set_tags(
        {"optuna_study": tuning.study, "optuna_storage": tuning.storage,
         "optuna_trials_before": str(tuning.trials_before), "optuna_trials_after": str(tuning.trials_after)}
    )  # fmt: skip
    # validation AUC is the tuning objective, not a holdout figure
    mlflow.log_metrics({k if k == "validation_roc_auc" else f"holdout_{k}": v for k, v in metrics.items()})
    mlflow.log_dict({"calibration": asdict(model.calibration)}, "calibration.json")
    y = holdout["churned"].to_numpy()
    for name, fig in plots(y, model.probability(holdout), model).items():
        mlflow.log_figure(fig, name)
    model_uri = _log_model(model, holdout)
    champion_metric = _champion_metric(cfg.store, holdout) if cfg.register_model else None
    if champion_metric is not None:
        mlflow.log_metric(f"champion_holdout_{HEADLINE_METRIC}", champion_metric)
    return model_uri, champion_metric


def version_description(
    cfg: ChurnTrainConfig, folds: Folds, metrics: dict[str, float], tuning: Tuning,
    champion_metric: float | None,
) -> str:  # fmt: skip
    """What a registered version is, in a paragraph: the label, the sets, the search, the figures."""
    dates = folds.as_of_dates()
    champion = (
        "" if champion_metric is None else f"; the champion scored {champion_metric:.4f} on the same holdout"
    )
    return (
        f"LightGBM churn model, Platt-calibrated: the chance that a customer"
        f" {LABEL_PHRASES[cfg.label]} in the {cfg.horizon_days} days after the snapshot"
        f" ({cfg.population} customers). Trained on snapshots at {', '.join(dates['train'])},"
        f" early-stopped and calibrated at {dates['validation'][0]}, with the best of"
        f' {tuning.trials_after} Optuna trials (study "{tuning.study}"). On the holdout at'
        f" {dates['holdout'][0]} ({len(folds.holdout):,} customers) its ROC-AUC is"
        f" {metrics['roc_auc']:.4f}, against {metrics['baseline_recency_roc_auc']:.4f} for recency"
        f" alone{champion}."
    )


def _log_model(model: ChurnModel, holdout: pd.DataFrame) -> str:
    """Log ``model`` as the run's pyfunc with a signature from five holdout rows; returns its URI."""
    from mlflow.models import infer_signature

    example = holdout[model.features].head(5).copy()
    signature = infer_signature(example, model.probability(example))
    info = tracking.log_model(model, REQUIREMENTS, signature=signature, input_example=example)
    return info.model_uri


def _champion_metric(store: Store, holdout: pd.DataFrame) -> float | None:
    """The current champion's holdout AUC (None without a champion): what the gate compares with."""
    import mlflow
    from training import registry

    champion = registry.get_alias(MODEL_NAME, registry.CHAMPION, store=store)
    if champion is None:
        return None
    champ_model = mlflow.pyfunc.load_model(champion.uri).unwrap_python_model()
    return classification_metrics(holdout["churned"].to_numpy(), champ_model.probability(holdout))["roc_auc"]


def write_metrics_json(path: Path, result: ChurnResult) -> None:
    """The holdout figures as JSON: metrics (rounded), as-of dates, rows, run and registered version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": "churn",
        "label": result.label,
        "metrics": {k: round(v, 6) if isinstance(v, float) else v for k, v in result.metrics.items()},
        "as_of": result.as_of_dates,
        "rows": result.rows,
        "run_id": result.run_id,
        "registered_version": result.registered_version,
    }
    path.write_text(json.dumps(doc, indent=2))


def train_fixed(
    data: Path,
    store: Store,
    experiment: str,
    params: ChurnParams,
    as_of: tuple[str, str] = ("2025-06-01", "2025-08-01"),
) -> str:
    """A champion quickly, for fixtures and benchmarks: no search and no holdout.

    Fits the model with ``params`` on the first as-of date (early stopping and calibration on the
    second), logs it as its serving pyfunc in ``experiment``, registers it as the challenger and
    promotes it with force. Returns the registered version.
    """
    import mlflow
    from training import registry

    frame = churn_training_set(open_validated(data), list(as_of))
    train = frame[frame["as_of"] == frame["as_of"].min()]
    valid = frame[frame["as_of"] == frame["as_of"].max()]
    model, _ = fit(params, train, valid)
    registry.experiment(experiment, store)
    with mlflow.start_run():
        model_uri = tracking.log_model(model, REQUIREMENTS).model_uri
    version = registry.register_challenger(
        model_uri, MODEL_NAME, experiment, HEADLINE_METRIC, 0.5, store=store
    )
    registry.promote(MODEL_NAME, force=True, store=store)
    return version.version
