"""Forecast value: each customer's expected net revenue over a horizon if they stay, trained point in time.

Time layout for a holdout as-of date ``T`` and a horizon ``h`` (365 days by default):

- training as-of dates ``T - h - k * step`` (``k = 0 .. n_train_dates - 1``): features from the
  events before the date, targets from the events in ``[date, date + h)``, so every target window
  ends by ``T`` and the model never sees an event at or after ``T``;
- holdout: features at ``T``, actual revenue in ``[T, T + h)`` (the label convention of
  :mod:`features.labels`: the window starts exactly where the features stop).

"If the customer stays" is the definition of the value a churn probability multiplies into a value
at risk. A customer *stayed* over a window when they made a purchase or an engaged event in it (the
observable side of not churning, ``vocab.ACTIVITY_EVENT_TYPES``; in a purchase-only log such as
CDNOW, a purchase). The model
(:class:`serving.value_model.ValueModel`) has two parts: a classifier of staying, trained on every
customer, and a spend regressor (LightGBM, Tweedie loss: the mean of a revenue with many zeros),
trained on the customers who stayed. The spend part is the served forecast; the holdout compares
their product, the expected revenue, with what each customer actually spent, beside two baselines
computed in the same run:

- ``bgnbd_gamma_gamma``: BG/NBD expected purchases times Gamma-Gamma spend (:mod:`training.btyd`);
- ``last_year_spend``: the net revenue of the ``h`` days before ``T``.

Training rows must look like holdout rows although they have a shorter history (CDNOW: half a year
at the training date, a year at the holdout), so the model leaves out the features that grow with
the length of the history (totals, tenure, 365-day sums) and reads instead rates per day of the
observed history and buy-till-you-die quantities fitted at each date, which keep their meaning.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import spearmanr

from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.families import DUCKDB, all_features, categorical_features
from features.labels import check_label_window
from features.query import AsOfDate
from features.snapshot import build_snapshot
from features.store import Store
from features.vocab import ACTIVITY_EVENT_TYPES
from serving.value_model import DERIVED_COLUMNS, BgNbd, GammaGamma, ValueModel, btyd_summary, derived_columns
from training import btyd, tracking
from training.lgb import booster_params

MODEL_NAME = "value"
GATE_METRIC = "spearman"  # the headline figure: the summary shows it, the promotion gate compares it
# What the logged model imports to load and score (besides mlflow and cloudpickle).
REQUIREMENTS = ("lightgbm", "numpy", "pandas", "scipy")
MIN_HISTORY_DAYS = 30
# A customer stayed over a window when they made one of these events in it: the events whose absence
# is churn under the activity label (a purchase in a purchase-only log).
STAY_EVENT_TYPES = ACTIVITY_EVENT_TYPES
# Features whose values grow with the length of the history before the as-of date: left out, since
# training dates see a shorter history than the holdout (the derived rates replace them).
HISTORY_LENGTH_FEATURES = (
    "purchases_total",
    "days_since_first_purchase",
    "purchase_span_days",
    "tenure_days",
    "purchases_365d",
    "net_revenue_365d",
    "customer_value",
    "service_tickets_365d",
    "returns_365d",
    "coupons_365d",
)
TOP_SHARE = 0.1  # the top decile of top_decile_revenue_share
# More recent buying and spending never lowers the chance of staying or the spend (monotone in
# LightGBM): it keeps the trees from reading noise of the shorter training history as a pattern.
MONOTONE_UP = (
    "btyd_expected_revenue",
    "btyd_expected_purchases",
    "gg_expected_order_value",
    "revenue_per_day_365d",
    "purchases_per_day_365d",
    "order_value_365d",
    "net_revenue_30d",
    "net_revenue_90d",
    "purchases_30d",
    "purchases_90d",
)
MONOTONE_DOWN = ("days_since_last_purchase", "days_since_last_event", "recency_over_age")


@dataclass
class ValueParams:
    """LightGBM settings of both parts (fixed: the holdout is the only fold a short history allows)."""

    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    tweedie_variance_power: float = 1.1
    max_rounds: int = 2000
    early_stopping: int = 50
    validation_share: float = 0.2  # customers held out of training to stop boosting
    seed: int = 42
    num_threads: int = 2

    def lgb(self, objective: str, features: list[str]) -> dict:
        """LightGBM's parameters for one part (``binary`` or ``tweedie``) over ``features``."""
        monotone = [(f in MONOTONE_UP) - (f in MONOTONE_DOWN) for f in features]
        params = booster_params(self, objective, monotone)
        if objective == "tweedie":
            params["tweedie_variance_power"] = self.tweedie_variance_power
        return params


class ValueTrainConfig(BaseModel):
    """What ``crm train value`` runs."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    as_of: AsOfDate  # the holdout as-of date
    horizon_days: int = Field(365, gt=0)
    n_train_dates: int = Field(1, ge=1)
    date_step_days: int = Field(30, gt=0)
    register_model: bool = False  # --register
    metrics_json: Path | None = None
    seed: int = 42
    experiment: str = "value"
    store: Store = Field(default_factory=Store)


@dataclass
class ValueResult:
    """Holdout figures of the model and the baselines, the dates and sizes of the sets, the run."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    as_of_dates: dict[str, list[str]]
    rows: dict[str, int]
    params: dict
    run_id: str
    model_uri: str
    registered_version: str | None = None
    champion_metric: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    # the version holding alias challenger once this run registered (a later job's, if one was faster)
    challenger_version: str | None = None


# ---------------------------------------------------------------------------------------------
# metrics


def value_metrics(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """``spearman`` (rank correlation with the actual revenue), ``top_decile_revenue_share`` (the
    share of the actual revenue earned by the 10% highest forecasts) and ``total_relative_error``
    ((sum forecast - sum actual) / sum actual)."""
    forecast, actual = np.asarray(forecast, dtype=float), np.asarray(actual, dtype=float)
    total = actual.sum()
    n_top = max(1, int(np.ceil(TOP_SHARE * len(actual))))
    top = np.argsort(-forecast, kind="stable")[:n_top]
    constant = np.ptp(forecast) == 0 or np.ptp(actual) == 0
    return {
        "spearman": 0.0 if constant else float(spearmanr(forecast, actual).statistic),
        "top_decile_revenue_share": float(actual[top].sum() / total) if total else 0.0,
        "total_relative_error": float((forecast.sum() - total) / total) if total else 0.0,
    }


# ---------------------------------------------------------------------------------------------
# data


def schedule(cfg: ValueTrainConfig, data_start: datetime) -> list[datetime]:
    """The training as-of dates: each target window ends by the holdout date."""
    holdout = cfg.as_of
    earliest = data_start + timedelta(days=MIN_HISTORY_DAYS)
    last = holdout - timedelta(days=cfg.horizon_days)
    step = timedelta(days=cfg.date_step_days)
    dates = sorted(d for d in (last - k * step for k in range(cfg.n_train_dates)) if d >= earliest)
    if not dates:
        raise UserError(
            f"Not enough history before as-of {holdout:%Y-%m-%d} for a {cfg.horizon_days}-day horizon:"
            f" training would be at {last:%Y-%m-%d} but the data starts {data_start:%Y-%m-%d};"
            " choose a later as-of date or a shorter horizon."
        )
    return dates


def window_outcome(con: duckdb.DuckDBPyConnection, as_of: datetime, horizon_days: int) -> pd.DataFrame:
    """``customer_id, revenue, stayed`` for the customers with an event in ``[as_of, as_of + h)``:
    net revenue (purchases minus returns) and whether they made a purchase or engaged event."""
    start, end = DUCKDB.ts(as_of), DUCKDB.ts(as_of + timedelta(days=horizon_days))
    stay = ", ".join(f"'{e}'" for e in STAY_EVENT_TYPES)
    return con.execute(
        f"""
        SELECT customer_id,
          coalesce(sum(CASE WHEN event_type = 'purchase' THEN amount
                            WHEN event_type = 'return' THEN -amount END), 0.0) AS revenue,
          CAST(count(*) FILTER (WHERE event_type IN ({stay})) > 0 AS INTEGER) AS stayed
        FROM events WHERE ts >= {start} AND ts < {end} AND customer_id IS NOT NULL
        GROUP BY customer_id
        """
    ).df()


def past_revenue(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int) -> pd.DataFrame:
    """``customer_id, past_revenue``: net revenue in the ``days`` before ``as_of``."""
    start, end = DUCKDB.ts(as_of - timedelta(days=days)), DUCKDB.ts(as_of)
    return con.execute(
        f"""
        SELECT customer_id,
          sum(CASE WHEN event_type = 'purchase' THEN amount ELSE -amount END) AS past_revenue
        FROM events WHERE ts >= {start} AND ts < {end} AND event_type IN ('purchase', 'return')
        GROUP BY customer_id
        """
    ).df()


def btyd_at(snapshot: pd.DataFrame) -> tuple[BgNbd, GammaGamma]:
    """BG/NBD and Gamma-Gamma fitted on a snapshot's columns (what the derived features use)."""
    x, t_x, T = btyd_summary(snapshot)
    buyers = T > 0
    bgnbd = btyd.fit_bgnbd(x[buyers], t_x[buyers], T[buyers])
    purchases = snapshot["purchases_365d"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_value = snapshot["net_revenue_365d"].to_numpy(dtype=float) / purchases
    return bgnbd, btyd.fit_gamma_gamma(purchases, mean_value)


@dataclass
class ValueSet:
    """Snapshot rows at one as-of date with derived columns, outcome and the fits used."""

    frame: pd.DataFrame  # snapshot + derived columns + revenue, stayed
    bgnbd: BgNbd
    gamma_gamma: GammaGamma


def value_set(con: duckdb.DuckDBPyConnection, as_of: datetime, horizon_days: int) -> ValueSet:
    """Every customer known before ``as_of``, with features, derived columns and the outcome."""
    snapshot = build_snapshot(con, as_of)
    bgnbd, gg = btyd_at(snapshot)
    frame = snapshot.assign(**derived_columns(snapshot, bgnbd, gg, horizon_days))
    outcome = window_outcome(con, as_of, horizon_days)
    frame = frame.merge(outcome, on="customer_id", how="left")
    frame["revenue"] = frame["revenue"].fillna(0.0)
    frame["stayed"] = frame["stayed"].fillna(0).astype("int64")
    frame.insert(1, "as_of", pd.Timestamp(as_of))
    return ValueSet(frame, bgnbd, gg)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model's inputs: snapshot features less the history-length ones, plus the derived columns."""
    declared = [f for f in all_features() if f not in HISTORY_LENGTH_FEATURES and f in frame.columns]
    return declared + list(DERIVED_COLUMNS)


# ---------------------------------------------------------------------------------------------
# training


def _boost(
    params: ValueParams, objective: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, features, cats
):
    """A LightGBM model stopped early on held-out customers, then refitted on all rows."""
    import lightgbm as lgb

    rng = np.random.default_rng(params.seed)
    unique = np.unique(groups)
    held = set(rng.choice(unique, size=max(1, int(params.validation_share * len(unique))), replace=False))
    valid = np.fromiter((g in held for g in groups), dtype=bool, count=len(groups))
    lgb_params = params.lgb(objective, features)
    train_set = lgb.Dataset(x[~valid], y[~valid], categorical_feature=cats, free_raw_data=False)
    stopped = lgb.train(
        lgb_params,
        train_set,
        num_boost_round=params.max_rounds,
        valid_sets=[lgb.Dataset(x[valid], y[valid], reference=train_set)],
        callbacks=[lgb.early_stopping(params.early_stopping, verbose=False)],
    )
    rounds = int(stopped.best_iteration or params.max_rounds)
    full = lgb.train(lgb_params, lgb.Dataset(x, y, categorical_feature=cats), num_boost_round=rounds)
    return full, rounds


def fit(
    params: ValueParams, train: pd.DataFrame, latest: ValueSet, horizon_days: int
) -> tuple[ValueModel, dict]:
    """Fit the stay classifier on every row and the spend regressor on the rows that stayed.

    The served model carries the buy-till-you-die fits of ``latest`` (the newest history).
    Returns the model and the boosting rounds of each part.
    """
    features = feature_columns(train)
    levels = {c: sorted(train[c].dropna().astype(str).unique().tolist()) for c in categorical_features()}
    model = ValueModel("", "", features, levels, latest.bgnbd, latest.gamma_gamma, horizon_days)
    x = model.encode(train)  # each date's derived columns from that date's fits
    cats = [features.index(c) for c in levels if c in features]
    groups = train["customer_id"].to_numpy()
    stayed = train["stayed"].to_numpy(dtype=int)
    if len(np.unique(stayed)) < 2:
        raise UserError("Every training customer stayed (or none did): choose another as-of date or horizon.")
    stay, stay_rounds = _boost(params, "binary", x, stayed, groups, features, cats)
    keep = stayed == 1
    spend_target = np.maximum(train["revenue"].to_numpy(dtype=float)[keep], 0.0)  # Tweedie needs y >= 0
    spend, spend_rounds = _boost(params, "tweedie", x[keep], spend_target, groups[keep], features, cats)
    model.stay_booster_text = stay.model_to_string()
    model.spend_booster_text = spend.model_to_string()
    model.num_threads = params.num_threads
    model._boosters = None
    return model, {"stay_rounds": stay_rounds, "spend_rounds": spend_rounds}


# ---------------------------------------------------------------------------------------------
# evaluation


def baselines(con, cfg: ValueTrainConfig, holdout: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict]:
    """The baselines' forecasts on the holdout rows, and the BTYD baseline's fitted parameters.

    ``last_year_spend`` is the net revenue of the 365 days before the as-of date, scaled to the
    horizon (the ranking is the year's; the scale makes the totals comparable).
    ``last_horizon_spend`` is the net revenue of the horizon before it (the same for 365 days).
    """
    customers = holdout["customer_id"].to_numpy()
    bg_forecast, bgnbd, gg = btyd.bgnbd_gamma_gamma_forecast(
        con, cfg.as_of, cfg.horizon_days, holdout["customer_id"]
    )
    forecasts = {"bgnbd_gamma_gamma": bg_forecast}
    for name, days, scale in (
        ("last_year_spend", 365, cfg.horizon_days / 365),
        ("last_horizon_spend", cfg.horizon_days, 1.0),
    ):
        past = past_revenue(con, cfg.as_of, days).set_index("customer_id")["past_revenue"]
        forecasts[name] = past.reindex(customers).fillna(0.0).to_numpy() * scale
    fitted = {"baseline_bgnbd": asdict(bgnbd), "baseline_gamma_gamma": asdict(gg)}
    return forecasts, fitted


def conditional_metrics(model: ValueModel, holdout: pd.DataFrame) -> dict[str, float]:
    """The forecast if staying against the revenue of the holdout customers who stayed, and the
    stay classifier's ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    stayed = holdout["stayed"].to_numpy(dtype=bool)
    out = {}
    if stayed.any():
        rows = holdout[stayed]
        scores = value_metrics(model.forecast_if_stays(rows), rows["revenue"].to_numpy())
        out |= {f"stayers_{k}": v for k, v in scores.items()}
    if 0 < stayed.sum() < len(stayed):
        out["stay_roc_auc"] = float(roc_auc_score(stayed, model.stay_probability(holdout)))
    return out


def truth_metrics(
    data: Path, model: ValueModel, holdout: pd.DataFrame, forecasts: dict, cfg: ValueTrainConfig
) -> dict:
    """On simulated data: the forecast if staying against the revenue of the customers the truth
    says were alive through the whole holdout window, beside the baselines on the same customers."""
    if not (Path(data) / "truth").is_dir():
        return {}
    from features.synth import true_customers

    truth = true_customers(data)[["customer_id", "churn_ts"]]
    end = pd.Timestamp(cfg.as_of + timedelta(days=cfg.horizon_days))
    alive_ids = set(truth.loc[truth["churn_ts"].isna() | (truth["churn_ts"] >= end), "customer_id"])
    alive = holdout["customer_id"].isin(alive_ids).to_numpy()
    if alive.sum() < 10:
        return {}
    actual = holdout["revenue"].to_numpy()[alive]
    out = {f"alive_{k}": v for k, v in value_metrics(model.forecast_if_stays(holdout[alive]), actual).items()}
    for name, forecast in forecasts.items():
        out |= {f"alive_{name}_{k}": v for k, v in value_metrics(forecast[alive], actual).items()}
    out["alive_customers"] = int(alive.sum())
    return out


# ---------------------------------------------------------------------------------------------
# the job


def run(cfg: ValueTrainConfig, progress=None) -> ValueResult:
    """Build the point-in-time sets, fit the value model, evaluate it and the baselines on the
    holdout, log to MLflow, optionally register it as challenger."""
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    con = open_validated(cfg.data)
    check_label_window(con, cfg.as_of, cfg.horizon_days)
    data_start = con.execute("SELECT min(ts) FROM events").fetchone()[0]
    train_dates = schedule(cfg, data_start)
    say(f"building training sets at {', '.join(f'{d:%Y-%m-%d}' for d in train_dates)}")
    train = pd.concat([value_set(con, d, cfg.horizon_days).frame for d in train_dates], ignore_index=True)
    say(f"building the holdout at {cfg.as_of:%Y-%m-%d}")
    latest = value_set(con, cfg.as_of, cfg.horizon_days)
    holdout = latest.frame
    params = ValueParams(seed=cfg.seed)
    say("fitting the stay and spend models")
    model, rounds = fit(params, train, latest, cfg.horizon_days)
    actual = holdout["revenue"].to_numpy()
    metrics = value_metrics(model.expected_revenue(holdout), actual)
    say("fitting the baselines")
    forecasts, fitted = baselines(con, cfg, holdout)
    baseline_metrics = {name: value_metrics(f, actual) for name, f in forecasts.items()}
    # the two baselines of the report; the horizon's own spend is one more reference in `extra`
    extra = {f"last_horizon_spend_{k}": v for k, v in baseline_metrics.pop("last_horizon_spend").items()}
    extra |= conditional_metrics(model, holdout) | truth_metrics(cfg.data, model, holdout, forecasts, cfg)
    dates = {"train": [f"{d:%Y-%m-%d}" for d in train_dates], "holdout": [f"{cfg.as_of:%Y-%m-%d}"]}
    rows = {"train": len(train), "train_stayed": int(train["stayed"].sum()), "holdout": len(holdout)}
    all_params = (
        asdict(params) | rounds | {"bgnbd": asdict(model.bgnbd), "gamma_gamma": asdict(model.gamma_gamma)}
    )
    result = ValueResult(metrics, baseline_metrics, dates, rows, all_params | fitted, "", "", extra=extra)
    fingerprint = input_fingerprint(cfg.data)
    result.run_id, result.model_uri, result.champion_metric = log_run(
        cfg, model, result, train, holdout, fingerprint
    )
    if cfg.register_model:
        from training import registry

        key = registry.holdout_key(
            data=fingerprint, as_of=f"{cfg.as_of:%Y-%m-%d}", horizon_days=cfg.horizon_days, model=MODEL_NAME
        )
        version = registry.register_challenger(
            result.model_uri, MODEL_NAME, key, GATE_METRIC, metrics[GATE_METRIC], result.champion_metric,
            description=version_description(cfg, result), store=cfg.store, say=say,
        )  # fmt: skip
        result.registered_version = version.version
        holder = registry.get_alias(MODEL_NAME, registry.CHALLENGER, store=cfg.store)
        result.challenger_version = None if holder is None else holder.version
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def version_description(cfg: ValueTrainConfig, result: ValueResult) -> str:
    """What a registered version is, in a paragraph: the forecast, the sets, the figures."""
    last_year = result.baselines["last_year_spend"][GATE_METRIC]
    champion = (
        ""
        if result.champion_metric is None
        else f"; the champion scored {result.champion_metric:.4f} on the same holdout"
    )
    return (
        f"Forecast value model: each customer's net revenue over the {cfg.horizon_days} days after"
        " the snapshot if they stay (a LightGBM stay classifier and a Tweedie spend regressor on"
        " buy-till-you-die features). Trained on snapshots at"
        f" {', '.join(result.as_of_dates['train'])} ({result.rows['train']:,} rows). On the holdout at"
        f" {result.as_of_dates['holdout'][0]} ({result.rows['holdout']:,} customers) its Spearman rank"
        f" correlation with the revenue they made is {result.metrics[GATE_METRIC]:.4f}, against"
        f" {last_year:.4f} for last year's spend{champion}."
    )


def log_run(
    cfg: ValueTrainConfig, model: ValueModel, result: ValueResult, train: pd.DataFrame,
    holdout: pd.DataFrame, fingerprint: str,
) -> tuple[str, str, float | None]:  # fmt: skip
    """One MLflow run: parameters, tags, the sets, the model's and the baselines' holdout metrics and
    the pyfunc; with ``register_model`` also the champion's figure on this holdout."""
    import mlflow
    from training import registry

    registry.experiment(cfg.experiment, cfg.store)
    with mlflow.start_run(run_name=f"value {cfg.as_of:%Y-%m-%d} h{cfg.horizon_days}") as run:
        flat = {k: v for k, v in result.params.items() if not isinstance(v, dict)}
        mlflow.log_params(flat | {"horizon_days": cfg.horizon_days, "n_train_dates": cfg.n_train_dates})
        for part in ("bgnbd", "gamma_gamma", "baseline_bgnbd", "baseline_gamma_gamma"):
            mlflow.log_params({f"{part}_{k}": v for k, v in result.params[part].items()})
        mlflow.log_params({f"as_of_{k}": ",".join(v) for k, v in result.as_of_dates.items()})
        mlflow.log_params({f"rows_{k}": v for k, v in result.rows.items()})
        mlflow.set_tags(tracking.run_tags(cfg.data, fingerprint))
        tracking.log_dataset(train, "value training snapshots", "training", cfg.data, targets="revenue")
        tracking.log_dataset(holdout, "value holdout snapshot", "evaluation", cfg.data, targets="revenue")
        mlflow.log_metrics({f"holdout_{k}": v for k, v in result.metrics.items()})
        for name, values in result.baselines.items():
            mlflow.log_metrics({f"baseline_{name}_{k}": v for k, v in values.items()})
        mlflow.log_metrics({f"holdout_{k}": float(v) for k, v in result.extra.items()})
        example = holdout[_snapshot_inputs(model, holdout)].head(5).copy()
        from mlflow.models import infer_signature

        signature = infer_signature(example, model.forecast_if_stays(example))
        info = tracking.log_model(model, REQUIREMENTS, signature=signature, input_example=example)
        champion = _champion_metric(cfg.store, holdout) if cfg.register_model else None
        if champion is not None:
            mlflow.log_metric(f"champion_holdout_{GATE_METRIC}", champion)
    return run.info.run_id, info.model_uri, champion


def _snapshot_inputs(model: ValueModel, frame: pd.DataFrame) -> list[str]:
    """The snapshot columns the pyfunc reads: its features that are snapshot columns, and the inputs
    of the derived ones."""
    from serving.value_model import BTYD_INPUTS, SPEND_INPUTS

    declared = set(all_features())
    needed = {f for f in model.features if f in declared} | set(BTYD_INPUTS) | set(SPEND_INPUTS)
    return ["customer_id"] + [c for c in frame.columns if c in needed]


def _champion_metric(store: Store, holdout: pd.DataFrame) -> float | None:
    """The current champion's holdout Spearman (None without a champion): what the gate compares."""
    import mlflow
    from training import registry

    champion = registry.get_alias(MODEL_NAME, registry.CHAMPION, store=store)
    if champion is None:
        return None
    champ = mlflow.pyfunc.load_model(champion.uri).unwrap_python_model()
    return value_metrics(champ.expected_revenue(holdout), holdout["revenue"].to_numpy())[GATE_METRIC]


def write_metrics_json(path: Path, result: ValueResult) -> None:
    """``{"model": "value", "metrics": {...}, "baselines": {name: {...}}}`` plus dates, rows, the
    conditional and truth figures, the run and the registered version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def rounded(values: dict) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}

    doc = {
        "model": MODEL_NAME,
        "metrics": rounded(result.metrics),
        "baselines": {name: rounded(values) for name, values in result.baselines.items()},
        "conditional": rounded(result.extra),
        "as_of": result.as_of_dates,
        "rows": result.rows,
        "run_id": result.run_id,
        "registered_version": result.registered_version,
    }
    path.write_text(json.dumps(doc, indent=2))
