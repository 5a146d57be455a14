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

Optuna tunes on the validation fold (pruned with ``optuna_integration``'s LightGBM callback; the
study lives in the store's Optuna storage, so an interrupted search resumes); the final model is
calibrated (Platt) on the validation fold and evaluated once on the holdout, beside a recency-only
score and, for simulated data, the oracle.
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
from features.families import FEATURE_SET_NAME, categorical_features, feature_set_version, model_features
from features.labels import ENGAGED_DAYS, churn_training_set, default_label
from features.snapshot import as_datetime
from features.store import Store
from features.vocab import ChurnLabel, Population
from serving.churn_scoring import Calibration, ChurnModel
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


def tune(cfg: ChurnTrainConfig, train: pd.DataFrame, valid: pd.DataFrame, study_name: str) -> ChurnParams:
    """Optuna TPE search on validation AUC, pruned, stored in the store's Optuna storage so it resumes."""
    study = _study(cfg, study_name)
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, cfg.trials - done)
    if remaining:
        study.optimize(_objective(cfg.seed, train, valid), n_trials=remaining, show_progress_bar=False)
    best = study.best_trial.params
    return ChurnParams(**{k: best[k] for k in _SPACE}, seed=cfg.seed)


def _study(cfg: ChurnTrainConfig, study_name: str) -> optuna.Study:
    """The stored study of this holdout (created on first use, with the defaults as its first trial)."""
    import optuna

    cfg.store.root.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=cfg.store.optuna,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=20),
    )
    if not study.trials:
        study.enqueue_trial({k: v for k, v in asdict(ChurnParams()).items() if k in _SPACE})
    return study


def _objective(seed: int, train: pd.DataFrame, valid: pd.DataFrame) -> Callable[[optuna.Trial], float]:
    """Validation AUC of the parameters a trial suggests, the rounds kept as a trial attribute."""
    from optuna_integration import LightGBMPruningCallback

    def objective(trial: optuna.Trial) -> float:
        params = ChurnParams(
            learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            num_leaves=trial.suggest_int("num_leaves", 8, 128, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 10, 400, log=True),
            feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
            bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
            lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
            seed=seed,
        )
        model, rounds = fit(params, train, valid, [LightGBMPruningCallback(trial, "auc", "valid")])
        trial.set_user_attr("rounds", rounds)
        return classification_metrics(valid["churned"], model.probability(valid))["roc_auc"]

    return objective


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
    """Build the training sets, tune, fit, calibrate, evaluate, log to MLflow, optionally register."""
    from training import registry

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    con = open_validated(cfg.data)
    cfg = cfg.with_label(con)
    say(f"label: {cfg.label}")
    folds = build_folds(con, cfg, say)
    fingerprint = input_fingerprint(cfg.data)
    study_name = "-".join(
        map(str, ("churn", fingerprint, f"{folds.holdout_date:%Y%m%d}", *cfg.windows().values()))
    )
    say(f"tuning with Optuna ({cfg.trials} trials, study {study_name})")
    params = tune(cfg, folds.train, folds.valid, study_name)
    model, rounds = fit(params, folds.train, folds.valid)
    metrics = holdout_metrics(cfg, model, folds)
    run_id, model_uri, champion_metric = log_run(cfg, model, params, rounds, folds, metrics, fingerprint)
    result = ChurnResult(
        metrics, folds.as_of_dates(), folds.rows(), asdict(params), run_id, model_uri, label=cfg.label
    )
    if cfg.register_model:
        key = registry.holdout_key(data=fingerprint, as_of=f"{folds.holdout_date:%Y-%m-%d}", **cfg.windows())
        described = (
            f"holdout {folds.holdout_date:%Y-%m-%d}, horizon {cfg.horizon_days} d, {cfg.label} label,"
            f" {cfg.population}"
        )
        version = registry.register_challenger(
            model_uri, MODEL_NAME, key, "roc_auc", metrics["roc_auc"], champion_metric,
            description=described, store=cfg.store,
        )  # fmt: skip
        result.registered_version = version.version
        result.champion_metric = champion_metric
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def log_run(
    cfg: ChurnTrainConfig, model: ChurnModel, params: ChurnParams, rounds: int, folds: Folds,
    metrics: dict[str, float], fingerprint: str,
) -> tuple[str, str, float | None]:  # fmt: skip
    """One MLflow run: parameters, tags, holdout metrics, plots and the pyfunc model; with
    ``register_model`` also the champion's figure on this holdout. Returns (run id, model URI,
    champion metric or None)."""
    import mlflow
    from training import registry

    registry.experiment(cfg.experiment, cfg.store)
    holdout = folds.holdout
    with mlflow.start_run(run_name=f"churn {folds.holdout_date:%Y-%m-%d} h{cfg.horizon_days}") as run:
        mlflow.log_params(asdict(params) | {"rounds": rounds, "trials": cfg.trials} | cfg.windows())
        mlflow.log_params({f"as_of_{k}": ",".join(v) for k, v in folds.as_of_dates().items()})
        mlflow.log_params({f"rows_{k}": v for k, v in folds.rows().items()})
        mlflow.set_tags(
            {"feature_set": FEATURE_SET_NAME, "feature_set_version": feature_set_version(),
             "data_fingerprint": fingerprint, "data_dir": str(Path(cfg.data).resolve())}
        )  # fmt: skip
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        mlflow.log_dict({"calibration": asdict(model.calibration)}, "calibration.json")
        y = holdout["churned"].to_numpy()
        for name, fig in plots(y, model.probability(holdout), model).items():
            mlflow.log_figure(fig, name)
        model_uri = _log_model(model, holdout)
        champion_metric = _champion_metric(cfg.store, holdout) if cfg.register_model else None
        if champion_metric is not None:
            mlflow.log_metric("champion_holdout_roc_auc", champion_metric)
    return run.info.run_id, model_uri, champion_metric


def _log_model(model: ChurnModel, holdout: pd.DataFrame) -> str:
    """Log ``model`` as the run's pyfunc with a signature from five holdout rows; returns its URI."""
    from mlflow.models import infer_signature

    import mlflow

    example = holdout[model.features].head(5).copy()
    signature = infer_signature(example, model.probability(example))
    info = mlflow.pyfunc.log_model(
        name="model", python_model=model, signature=signature, input_example=example
    )
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
        model_uri = mlflow.pyfunc.log_model(name="model", python_model=model).model_uri
    version = registry.register_challenger(model_uri, MODEL_NAME, experiment, "roc_auc", 0.5, store=store)
    registry.promote(MODEL_NAME, force=True, store=store)
    return version.version
