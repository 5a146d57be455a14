"""Uplift model: whom a retention offer keeps, learned from the randomised campaigns.

For each offer with at least two campaigns in the ``campaigns`` table, in time order:

- the last campaign is the **holdout** (evaluated once), the one before it the **validation**
  campaign (the Optuna objective), the earlier ones are for training; with only two campaigns the
  validation campaign is the holdout too (the run says so);
- each campaign's rows are its customers' snapshot at its start (events before it only: the offer
  cannot leak into its inputs), its arm and whether the customer was retained
  (:mod:`features.campaigns`);
- the learner is causalml's X-learner (``BaseXClassifier``) with LightGBM for the outcome and the
  effect models, tuned by an Optuna TPE search on the validation campaign's Qini coefficient and
  refitted on the training and validation campaigns with the best parameters. In a randomised
  campaign the propensity is the treated share, a constant.

The fitted LightGBM models are exported into :class:`serving.uplift_model.UpliftModel`, which scores
as causalml does (a test checks it) with LightGBM alone, so serving needs no causalml.

Holdout figures per offer: the Qini coefficient and the AUUC (both per customer of the campaign,
see :func:`qini_coefficient`), the realised uplift among the top 10/20/30% and the Qini
of ranking by risk (the chance of not being retained without the offer); on simulated data also
the Qini of the true effects (the oracle), the ratio of the two and the rank correlation with the
true effects. The gate metric is the mean holdout Qini over the offers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.campaigns import Campaign, OutcomeWindow, campaign_frame, list_campaigns
from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.families import categorical_features, model_features
from features.store import Store
from features.vocab import CONTROL, Offer
from serving.uplift_model import OfferLearner, UpliftModel
from training import tracking

MODEL_NAME = "uplift"
GATE_METRIC = "qini"  # the mean holdout Qini coefficient over the offers
TOP_SHARES = (0.1, 0.2, 0.3)
# What the logged model imports to load and score (besides mlflow and cloudpickle).
REQUIREMENTS = ("lightgbm", "numpy", "pandas")
MIN_CAMPAIGNS = 2  # an offer needs a campaign to learn from and a later one to tune on


@dataclass
class UpliftParams:
    """LightGBM settings shared by the outcome and the effect learners of one offer."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 3
    min_child_samples: int = 1000
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    seed: int = 42
    num_threads: int = 2

    def lgb(self) -> dict:
        """Keyword arguments of LightGBM's scikit-learn estimators."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "subsample": 0.8,
            "subsample_freq": 1,
            "random_state": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "n_jobs": self.num_threads,
            "verbosity": -1,
        }


SPACE = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "colsample_bytree", "reg_lambda")


class UpliftTrainConfig(BaseModel):
    """What ``crm train uplift`` runs."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    offers: list[Offer] | None = None  # None: every offer with at least two campaigns
    trials: int = Field(10, ge=1)
    outcome_offset_days: int = Field(28, ge=0)
    outcome_days: int = Field(91, gt=0)
    register_model: bool = False  # --register
    metrics_json: Path | None = None
    seed: int = 42
    experiment: str = "uplift"
    store: Store = Field(default_factory=Store)

    @property
    def window(self) -> OutcomeWindow:
        """When the campaigns' outcomes are read."""
        return OutcomeWindow(self.outcome_offset_days, self.outcome_days)


@dataclass
class OfferSplit:
    """One offer's campaigns in time order: training, validation (the objective) and holdout."""

    offer: str
    train: list[Campaign]
    valid: Campaign
    holdout: Campaign

    @property
    def holdout_is_validation(self) -> bool:
        return self.valid.campaign_id == self.holdout.campaign_id

    def to_dict(self) -> dict:
        return {
            "train": [c.campaign_id for c in self.train],
            "valid": self.valid.campaign_id,
            "holdout": self.holdout.campaign_id,
        }


@dataclass
class UpliftResult:
    """Per offer: the campaigns, the tuned parameters and the holdout figures; the run."""

    metrics: dict[str, dict[str, float]]  # offer -> holdout figures
    campaigns: dict[str, dict]
    params: dict[str, dict]
    rows: dict[str, dict[str, int]]
    gate_metric: float
    run_id: str = ""
    model_uri: str = ""
    registered_version: str | None = None
    challenger_version: str | None = None
    champion_metric: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# metrics


def qini_curve(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """(n + 1,) Qini curve of ranking by ``score`` (highest first): after the top ``k``, the treated
    outcomes less the control outcomes scaled to the treated count (Radcliffe 2007), from 0."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    w = np.asarray(treated, dtype=float)[order]
    y = np.asarray(outcome, dtype=float)[order]
    n_t, n_c = np.cumsum(w), np.cumsum(1 - w)
    y_t, y_c = np.cumsum(y * w), np.cumsum(y * (1 - w))
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    return np.concatenate([[0.0], curve])


def qini_coefficient(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> float:
    """The mean gap between the Qini curve and the random line, per customer of the campaign: the
    extra customers retained, as a share of the campaign, that targeting by ``score`` gains over a
    random pick of the same size, averaged over every size (causalml's ``qini_score`` with
    ``normalize=False``, over the campaign's size). Dividing by the campaign's size, not by its total
    gain, keeps it stable where an offer gains almost nothing overall; rankings on one campaign
    compare the same either way."""
    curve = qini_curve(score, treated, outcome)
    random = np.linspace(0.0, curve[-1], len(curve))
    return float((curve - random).mean() / max(len(curve) - 1, 1))


def auuc(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> float:
    """Area under the uplift (cumulative gain) curve per customer of the campaign (causalml's
    ``auuc_score`` with ``normalize=False``, over the size): after the top ``k``, (mean treated
    outcome - mean control outcome) times ``k``."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    w = np.asarray(treated, dtype=float)[order]
    y = np.asarray(outcome, dtype=float)[order]
    n_t, n_c = np.cumsum(w), np.cumsum(1 - w)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where((n_t > 0) & (n_c > 0), np.cumsum(y * w) / n_t - np.cumsum(y * (1 - w)) / n_c, 0.0)
    gain = np.concatenate([[0.0], lift * np.arange(1, len(y) + 1)])
    return float(gain.mean() / max(len(y), 1))


def uplift_at(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray, share: float) -> float:
    """The realised uplift among the top ``share`` by score: treated minus control retention."""
    n = max(1, int(np.ceil(share * len(score))))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n]
    w = np.asarray(treated, dtype=bool)[top]
    y = np.asarray(outcome, dtype=float)[top]
    if w.all() or not w.any():
        return 0.0
    return float(y[w].mean() - y[~w].mean())


def uplift_metrics(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> dict[str, float]:
    """``qini``, ``auuc`` and ``uplift_at_10/20/30`` of one ranking on one campaign."""
    out = {"qini": qini_coefficient(score, treated, outcome), "auuc": auuc(score, treated, outcome)}
    for share in TOP_SHARES:
        out[f"uplift_at_{round(share * 100)}"] = uplift_at(score, treated, outcome, share)
    return out


# ---------------------------------------------------------------------------------------------
# data


def split_campaigns(campaigns: list[Campaign], offers: list[str] | None) -> dict[str, OfferSplit]:
    """The campaigns of each offer in time order (see the module's docstring)."""
    by_offer: dict[str, list[Campaign]] = {}
    for campaign in sorted(campaigns, key=lambda c: c.start):
        by_offer.setdefault(campaign.offer, []).append(campaign)
    wanted = offers or sorted(by_offer)
    splits = {}
    for offer in wanted:
        found = by_offer.get(offer, [])
        if len(found) < MIN_CAMPAIGNS:
            if offers:  # asked for by name
                raise UserError(
                    f"The offer {offer!r} has {len(found)} randomised campaign(s) in the data: an uplift"
                    f" model needs at least {MIN_CAMPAIGNS} (one to learn from, a later one to tune on)."
                )
            continue
        train = found[:-2] if len(found) > 2 else found[:1]
        splits[offer] = OfferSplit(offer, train, found[-2] if len(found) > 2 else found[-1], found[-1])
    if not splits:
        raise UserError(
            "No offer has two randomised campaigns in the campaigns table: there is nothing to learn"
            " an uplift model from."
        )
    return splits


def feature_columns() -> list[str]:
    """The model's inputs: the churn model's declared features (the snapshot at each start)."""
    return model_features()


def categorical_levels(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Levels of each categorical input as seen in training (an unseen level scores as missing)."""
    inputs = set(feature_columns())
    return {
        c: sorted(frame[c].dropna().astype(str).unique().tolist())
        for c in categorical_features()
        if c in inputs
    }


# ---------------------------------------------------------------------------------------------
# fitting


def fit_offer(params: UpliftParams, frame: pd.DataFrame, offer: str, encode) -> OfferLearner:
    """causalml's X-learner on one offer's campaign rows, exported as LightGBM text models."""
    treated = frame["treated"].to_numpy(dtype=bool)
    learner = fit_x_learner(params, encode(frame), treated, frame["retained"].to_numpy(dtype=int), offer)
    cost = float(frame.loc[treated, "cost"].mean()) if treated.any() else 0.0
    return export_learner(learner, offer, float(treated.mean()), cost)


def fit_x_learner(params: UpliftParams, x: np.ndarray, treated: np.ndarray, retained: np.ndarray, offer: str):
    """causalml's ``BaseXClassifier`` with LightGBM learners; the propensity is the treated share."""
    from causalml.inference.meta import BaseXClassifier
    from lightgbm import LGBMClassifier, LGBMRegressor

    learner = BaseXClassifier(
        outcome_learner=LGBMClassifier(**params.lgb()),
        effect_learner=LGBMRegressor(**params.lgb()),
        control_name=CONTROL,
    )
    arm = np.where(treated, offer, CONTROL)
    learner.fit(X=x, treatment=arm, y=retained, p=np.full(len(x), float(np.mean(treated))))
    return learner


def export_learner(learner, offer: str, treated_share: float, cost: float) -> OfferLearner:
    """The fitted X-learner's control-outcome and effect models as LightGBM text models."""
    return OfferLearner(
        offer=offer,
        treated_share=treated_share,
        cost=cost,
        mu_control_text=learner.model_mu_c.booster_.model_to_string(),
        tau_control_text=learner.models_tau_c[offer].booster_.model_to_string(),
        tau_treated_text=learner.models_tau_t[offer].booster_.model_to_string(),
    )


def suggest(trial, seed: int) -> UpliftParams:
    """One point of the search space."""
    return UpliftParams(
        n_estimators=trial.suggest_int("n_estimators", 50, 300, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        num_leaves=trial.suggest_int("num_leaves", 2, 15, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 100, 3000, log=True),
        colsample_bytree=trial.suggest_float("colsample_bytree", 0.4, 1.0),
        reg_lambda=trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
        seed=seed,
    )


@dataclass
class Tuning:
    """What one offer's search did: the best parameters and validation Qini, the study, its trials."""

    params: UpliftParams
    best_qini: float
    study: str
    trials_before: int
    trials_after: int


def study_name(cfg: UpliftTrainConfig, split: OfferSplit, fingerprint: str) -> str:
    """The Optuna study of one offer's split, in words: what changes the objective is in it."""
    w = cfg.window
    return (
        f"uplift {split.offer}: validation {split.valid.campaign_id}, trained on"
        f" {', '.join(c.campaign_id for c in split.train)}, retained {w.offset_days}+{w.days} days,"
        f" data {fingerprint[:8]}"
    )


def tune(cfg: UpliftTrainConfig, name: str, objective: Callable[[UpliftParams], float], say) -> Tuning:
    """``cfg.trials`` more trials of the stored study ``name`` (a resumed search goes on)."""
    import optuna

    with tracking.store_lock(cfg.store, f"optuna study {name}", say):
        cfg.store.root.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=name, storage=cfg.store.optuna, direction="maximize", load_if_exists=True
        )
        study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(study.trials))
        if not study.trials:
            study.enqueue_trial({k: v for k, v in asdict(UpliftParams()).items() if k in SPACE})
        before = len([t for t in study.trials if t.state.is_finished()])
        study.optimize(lambda trial: objective(suggest(trial, cfg.seed)), n_trials=cfg.trials)
        after = len([t for t in study.trials if t.state.is_finished()])
    best = study.best_trial
    params = UpliftParams(**{k: best.params[k] for k in SPACE}, seed=cfg.seed)
    return Tuning(params, float(best.value), name, before, after)


# ---------------------------------------------------------------------------------------------
# evaluation


def holdout_metrics(model: UpliftModel, offer: str, holdout: pd.DataFrame, data: Path) -> dict[str, float]:
    """The model's figures on the holdout campaign, the risk ranking's Qini and, on simulated
    data, the oracle's (the true effects)."""
    treated, retained = holdout["treated"].to_numpy(), holdout["retained"].to_numpy()
    score = model.uplift(holdout, offer)
    out = uplift_metrics(score, treated, retained)
    risk = 1 - model.retention_without_offer(holdout, offer)
    out["qini_risk_ranking"] = qini_coefficient(risk, treated, retained)
    out["customers"] = float(len(holdout))
    out["treated"] = float(treated.sum())
    out["realised_uplift"] = float(retained[treated == 1].mean() - retained[treated == 0].mean())
    return out | oracle_metrics(data, holdout, score)


def oracle_metrics(data: Path, holdout: pd.DataFrame, score: np.ndarray) -> dict[str, float]:
    """On simulated data: the Qini of the true effects on the same campaign, the model's share of
    it, and the rank correlation of the predicted with the true effects."""
    truth = _truth(data)
    if truth is None:
        return {}
    from scipy.stats import spearmanr

    true = true_uplift(truth, holdout)
    treated, retained = holdout["treated"].to_numpy(), holdout["retained"].to_numpy()
    oracle = qini_coefficient(true, treated, retained)
    return {
        "qini_oracle": oracle,
        "qini_share_of_oracle": qini_coefficient(score, treated, retained) / oracle if oracle else 0.0,
        "spearman_true_uplift": float(spearmanr(score, true).statistic),
        "true_average_uplift": float(true.mean()),
    }


def true_uplift(truth: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """The true effect of each row's campaign offer on each row's customer (rows of a campaign frame)."""
    keys = frame[["campaign_id", "customer_id", "offer"]]
    merged = keys.merge(truth[["campaign_id", "customer_id", "offer", "uplift"]], how="left")
    return merged["uplift"].fillna(0.0).to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# the job


def run(cfg: UpliftTrainConfig, progress=None) -> UpliftResult:
    """Tune and fit one X-learner per offer on its campaigns, evaluate each on its holdout campaign,
    log the model to MLflow and optionally register it as challenger of ``uplift``."""
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    con = open_validated(cfg.data)
    splits = split_campaigns(list_campaigns(con), cfg.offers)
    fingerprint = input_fingerprint(cfg.data)
    frames: dict[str, pd.DataFrame] = {}

    def rows_of(campaigns: list[Campaign]) -> pd.DataFrame:
        for c in campaigns:
            if c.campaign_id not in frames:
                say(f"building the snapshot at the start of {c.campaign_id}")
                frames[c.campaign_id] = campaign_frame(con, c, cfg.window).assign(offer=c.offer)
        return pd.concat([frames[c.campaign_id] for c in campaigns], ignore_index=True)

    every = rows_of([c for s in splits.values() for c in (*s.train, s.valid, s.holdout)])
    features, levels = feature_columns(), categorical_levels(every)
    encoder = UpliftModel([], features, levels, cfg.outcome_offset_days, cfg.outcome_days)
    learners, metrics, params, rows, tunings = [], {}, {}, {}, {}
    for offer, split in splits.items():
        train, valid, holdout = rows_of(split.train), rows_of([split.valid]), rows_of([split.holdout])

        def validation_qini(p: UpliftParams, train=train, valid=valid, offer=offer) -> float:
            learner = fit_offer(p, train, offer, encoder.matrix)
            scorer = UpliftModel([learner], features, levels, cfg.outcome_offset_days, cfg.outcome_days)
            return qini_coefficient(scorer.uplift(valid, offer), valid["treated"], valid["retained"])

        say(f"tuning the {offer} learner ({cfg.trials} trials) on {split.valid.campaign_id}")
        tuning = tune(cfg, study_name(cfg, split, fingerprint), validation_qini, say)
        final_rows = train if split.holdout_is_validation else pd.concat([train, valid], ignore_index=True)
        say(f"fitting the {offer} learner on {len(final_rows):,} customers")
        learner = fit_offer(tuning.params, final_rows, offer, encoder.matrix)
        learners.append(learner)
        scorer = UpliftModel([learner], features, levels, cfg.outcome_offset_days, cfg.outcome_days)
        metrics[offer] = holdout_metrics(scorer, offer, holdout, cfg.data) | {
            "validation_qini": tuning.best_qini,
            "holdout_is_validation": float(split.holdout_is_validation),
        }
        params[offer] = asdict(tuning.params)
        rows[offer] = {"train": len(final_rows), "holdout": len(holdout)}
        tunings[offer] = tuning
    model = UpliftModel(learners, features, levels, cfg.outcome_offset_days, cfg.outcome_days)
    gate = float(np.mean([m["qini"] for m in metrics.values()]))
    result = UpliftResult(
        metrics, {o: s.to_dict() for o, s in splits.items()}, params, rows, gate,
        extra={"studies": {o: t.study for o, t in tunings.items()}},
    )  # fmt: skip
    holdouts = {offer: rows_of([s.holdout]) for offer, s in splits.items()}
    result.run_id, result.model_uri, result.champion_metric = log_run(
        cfg, model, result, holdouts, fingerprint
    )
    if cfg.register_model:
        register(cfg, result, fingerprint, say)
    result.seconds = time.perf_counter() - start
    if cfg.metrics_json:
        write_metrics_json(cfg.metrics_json, result)
    return result


def register(cfg: UpliftTrainConfig, result: UpliftResult, fingerprint: str, say) -> None:
    """Register the logged model as challenger of ``uplift``, with the champion's figure on the same
    holdout campaigns for the gate."""
    from training import registry

    key = registry.holdout_key(
        data=fingerprint, model=MODEL_NAME, holdout={o: c["holdout"] for o, c in result.campaigns.items()},
        window=[cfg.outcome_offset_days, cfg.outcome_days],
    )  # fmt: skip
    version = registry.register_challenger(
        result.model_uri, MODEL_NAME, key, GATE_METRIC, result.gate_metric, result.champion_metric,
        description=version_description(result), store=cfg.store, say=say,
    )  # fmt: skip
    result.registered_version = version.version
    holder = registry.get_alias(MODEL_NAME, registry.CHALLENGER, store=cfg.store)
    result.challenger_version = None if holder is None else holder.version


def version_description(result: UpliftResult) -> str:
    """What a registered version is, in a paragraph: the learners, the campaigns, the figures."""
    parts = [
        f"{offer}: Qini {m['qini']:.3f} on {result.campaigns[offer]['holdout']}"
        + (f" (the true effects' {m['qini_oracle']:.3f})" if "qini_oracle" in m else "")
        for offer, m in result.metrics.items()
    ]
    champion = "" if result.champion_metric is None else f"; the champion scored {result.champion_metric:.4f}"
    return (
        "Uplift model: per offer a causalml X-learner with LightGBM, trained on the offer's randomised"
        " campaigns (the snapshot at each campaign's start as input, retention in the outcome window as"
        f" outcome) and tuned by Optuna on a later campaign's Qini. Holdout: {'; '.join(parts)}."
        f" Mean holdout Qini {result.gate_metric:.4f}{champion}."
    )


def log_run(
    cfg: UpliftTrainConfig, model: UpliftModel, result: UpliftResult, holdouts: dict[str, pd.DataFrame],
    fingerprint: str,
) -> tuple[str, str, float | None]:  # fmt: skip
    """One MLflow run: parameters per offer, the campaigns, holdout metrics, Qini curves and the
    pyfunc; with ``register_model`` also the champion's figure on the same holdouts."""
    from mlflow.models import infer_signature

    import mlflow
    from training import registry

    registry.experiment(cfg.experiment, cfg.store)
    with mlflow.start_run(run_name=f"uplift {', '.join(result.metrics)}") as run:
        for offer, p in result.params.items():
            mlflow.log_params({f"{offer}_{k}": v for k, v in p.items()})
            mlflow.log_params({f"{offer}_{k}_campaigns": v if isinstance(v, str) else ",".join(v)
                               for k, v in result.campaigns[offer].items()})  # fmt: skip
            mlflow.log_metrics({f"holdout_{offer}_{k}": float(v) for k, v in result.metrics[offer].items()})
        mlflow.log_params({"outcome_offset_days": cfg.outcome_offset_days, "outcome_days": cfg.outcome_days})
        mlflow.log_metric(f"holdout_{GATE_METRIC}", result.gate_metric)
        mlflow.set_tags(tracking.run_tags(cfg.data, fingerprint))
        truth = _truth(cfg.data)
        for offer, frame in holdouts.items():
            true = None if truth is None else true_uplift(truth, frame)
            mlflow.log_figure(qini_figure(model, offer, frame, true), f"qini_{offer}.png")
        example = pd.concat(holdouts.values())[["customer_id", *model.features]].head(5).copy()
        offer = model.offers[0]
        signature = infer_signature(example, model.uplift(example, offer), params={"offer": offer})
        info = tracking.log_model(model, REQUIREMENTS, signature=signature, input_example=example)
        champion = champion_metric(cfg.store, holdouts) if cfg.register_model else None
        if champion is not None:
            mlflow.log_metric(f"champion_holdout_{GATE_METRIC}", champion)
    return run.info.run_id, info.model_uri, champion


def champion_metric(store: Store, holdouts: dict[str, pd.DataFrame]) -> float | None:
    """The current champion's mean Qini on these holdout campaigns (an offer it lacks scores 0)."""
    import mlflow
    from training import registry

    champion = registry.get_alias(MODEL_NAME, registry.CHAMPION, store=store)
    if champion is None:
        return None
    model = mlflow.pyfunc.load_model(champion.uri).unwrap_python_model()
    scores = [
        qini_coefficient(model.uplift(frame, offer), frame["treated"], frame["retained"])
        if offer in model.offers
        else 0.0
        for offer, frame in holdouts.items()
    ]
    return float(np.mean(scores))


def _truth(data: Path) -> pd.DataFrame | None:
    if not (Path(data) / "truth" / "campaigns").exists():
        return None
    from features.synth import true_campaign_effects

    return true_campaign_effects(data)


def qini_figure(model: UpliftModel, offer: str, holdout: pd.DataFrame, true: np.ndarray | None = None):
    """The Qini curves of the model, the risk ranking and random (and the true effects on simulated
    data) on the offer's holdout campaign."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    treated, retained = holdout["treated"].to_numpy(), holdout["retained"].to_numpy()
    curves = {
        "uplift model": model.uplift(holdout, offer),
        "risk (no offer)": 1 - model.retention_without_offer(holdout, offer),
    }
    if true is not None:
        curves["true effects"] = true
    fig, ax = plt.subplots(figsize=(5, 4))
    share = np.linspace(0, 1, len(holdout) + 1)
    for name, score in curves.items():
        ax.plot(share, qini_curve(score, treated, retained), label=name)
    last = qini_curve(curves["uplift model"], treated, retained)[-1]
    ax.plot([0, 1], [0, last], "k--", label="random")
    ax.set(xlabel="share of the campaign targeted", ylabel="incremental customers retained", title=offer)
    ax.legend()
    fig.tight_layout()
    return fig


def write_metrics_json(path: Path, result: UpliftResult) -> None:
    """``{"model": "uplift", "metrics": {offer: {...}}, "gate_metric": ..}`` plus campaigns, rows, params,
    the run and the registered version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": MODEL_NAME,
        GATE_METRIC: round(result.gate_metric, 6),
        "metrics": {o: {k: round(float(v), 6) for k, v in m.items()} for o, m in result.metrics.items()},
        "campaigns": result.campaigns,
        "rows": result.rows,
        "params": result.params,
        "run_id": result.run_id,
        "registered_version": result.registered_version,
    }
    path.write_text(json.dumps(doc, indent=2))
