"""MLflow tracking set-up and the model registry gate (aliases ``challenger`` and ``champion``).

A training run registers its model as a new version with alias ``challenger`` and records, as
version tags, its headline metric on the holdout and the current champion's on the same holdout
(the job scores the champion itself). ``promote`` first loads the challenger and scores the input
example logged with it, then moves ``champion`` to it only if it beats that figure, or with
``force``; otherwise it refuses and the registry stays exactly as it was. Stages are deprecated in
MLflow 3: only aliases are used.

Registration and promotion of one model hold a lock of the store (:func:`training.tracking.store_lock`),
so concurrent jobs register one after the other and each can say which version holds the alias.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

import mlflow
from features.errors import UserError
from features.store import Store
from features.vocab import MODEL_NAMES
from mlflow import MlflowClient
from training.tracking import store_lock

CHAMPION = "champion"
CHALLENGER = "challenger"
# Tells the MLflow UI these experiments train models, so it opens them in the runs view, not GenAI's.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
MODEL_DESCRIPTIONS = {
    "churn": (
        "The chance that a customer stops buying and engaging within the horizon (LightGBM on"
        " point-in-time feature snapshots, tuned with Optuna, Platt-calibrated). Alias champion is the"
        " version the service and the churn list use; challenger is the latest registered version,"
        " promoted by `crm promote churn` when it beats the champion on the same holdout."
    ),
    "recommender": (
        "Cross-sell recommendations: a two-tower model whose item embeddings are searched with FAISS,"
        " with business filters (owned and inactive items never offered) and a popularity fallback"
        " for unknown customers. Alias champion is the version the service uses; challenger is the"
        " latest registered version, promoted by `crm promote recommender` when it beats the"
        " champion on the same test split."
    ),
    "value": (
        "Each customer's forecast net revenue over the horizon if they stay (a LightGBM stay"
        " classifier and a Tweedie spend regressor with buy-till-you-die features): the customer"
        " value the churn list multiplies into a value at risk. Alias champion is the version in"
        " use; challenger is the latest registered version, promoted by `crm promote value`."
    ),
    "uplift": (
        "Per retention offer, the change in a customer's chance of being retained if sent it (a"
        " causalml X-learner with LightGBM, learnt from randomised campaigns against their control"
        " groups, tuned with Optuna on the Qini coefficient of a later campaign): the uplift a"
        " retention plan multiplies into value saved. Alias champion is the version in use;"
        " challenger is the latest registered version, promoted by `crm promote uplift` when its mean"
        " Qini beats the champion's on the same holdout campaigns."
    ),
}


class PromotionRefused(UserError):
    """The challenger does not beat the champion on the same holdout, or does not load and score."""


class ChallengerBroken(PromotionRefused):
    """The challenger fails to load or to score its input example: it is not promoted."""


def configure_tracking(store: Store) -> str:
    """Point MLflow at ``store``; create the embedded store's folder and, the first time, its tables.
    Returns the tracking URI."""
    uri = store.tracking
    if store.embedded:
        store.root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if store.embedded:
        _create_tables(store)
    return uri


@functools.cache  # once per store and process
def _create_tables(store: Store) -> None:
    """Create (or migrate) the embedded store's tables, one job at a time: two jobs creating a
    fresh SQLite store at once both run its migrations, and one of them fails."""
    with store_lock(store, "mlflow store"):
        client = MlflowClient()
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def experiment(name: str, store: Store) -> str:
    """Use (and create if needed) an experiment whose artifacts live under the embedded store."""
    configure_tracking(store)
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        location = store.artifact_root + f"/{name}" if store.embedded else None
        try:
            exp_id = client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except MlflowException as exc:  # a concurrent job created it first
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(name)
    if found is not None:
        exp_id = found.experiment_id
        for key, value in EXPERIMENT_KIND.items():
            if found.tags.get(key) != value:
                client.set_experiment_tag(exp_id, key, value)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@dataclass
class VersionInfo:
    """A registered version and the holdout figures recorded on it as tags."""

    name: str
    version: str
    run_id: str
    metric_name: str
    metric_value: float
    holdout_key: str
    higher_is_better: bool
    champion_metric: float | None
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        """The version's ``models:/`` URI."""
        return f"models:/{self.name}/{self.version}"


def _info(name: str, mv) -> VersionInfo:
    tags = mv.tags or {}
    champ = tags.get("champion_metric_on_holdout")
    return VersionInfo(
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        metric_name=tags.get("holdout_metric", "metric"),
        metric_value=float(tags.get("holdout_metric_value", "nan")),
        holdout_key=tags.get("holdout_key", ""),
        higher_is_better=tags.get("higher_is_better", "true") == "true",
        champion_metric=None if champ in (None, "", "none") else float(champ),
        aliases=sorted(getattr(mv, "aliases", None) or []),
    )


def get_alias(name: str, alias: str, *, store: Store) -> VersionInfo | None:
    """The version behind ``name@alias``, or None when the alias (or the model) does not exist."""
    configure_tracking(store)
    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return _info(name, mv)


def register_challenger(
    model_uri: str,
    name: str,
    holdout_key: str,
    metric_name: str,
    metric_value: float,
    champion_metric: float | None = None,
    higher_is_better: bool = True,
    description: str = "",
    *,
    store: Store,
    say=None,
) -> VersionInfo:
    """Register ``model_uri`` as a new version of ``name`` and give it alias ``challenger``.

    Concurrent jobs on one store register one after the other, so the later version holds the
    alias; the returned version's ``aliases`` say what it holds once registered, and ``say`` is told
    when the job waits for another.
    """
    configure_tracking(store)
    client = MlflowClient()
    tags = {
        "holdout_key": holdout_key,
        "holdout_metric": metric_name,
        "holdout_metric_value": repr(float(metric_value)),
        "higher_is_better": "true" if higher_is_better else "false",
        "champion_metric_on_holdout": "none" if champion_metric is None else repr(float(champion_metric)),
    }
    with store_lock(store, f"registered model {name}", say):
        _ensure_registered_model(client, name)
        mv = _create_version(client, name, model_uri, tags, description)
        current = get_alias(name, CHALLENGER, store=store)
        # the lock does not reach jobs on other machines: never take the alias from a later version
        if current is None or int(current.version) < int(mv.version):
            client.set_registered_model_alias(name, CHALLENGER, mv.version)
        return _info(name, client.get_model_version(name, mv.version))


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create registered model ``name`` with its description unless it exists (also when a job
    elsewhere created it a moment before); give an existing one without a description its own."""
    description = MODEL_DESCRIPTIONS.get(name, "")
    try:
        found = client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=description)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return
    if description and not found.description:
        client.update_registered_model(name, description=description)


def _create_version(client: MlflowClient, name: str, model_uri: str, tags: dict, description: str):
    """A new version of ``name`` from a logged model (``models:/m-...``, what ``log_model``
    returns), or from any other model URI through ``mlflow.register_model``."""
    if model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
        run_id = client.get_logged_model(model_id).source_run_id
        return client.create_model_version(
            name, model_uri, run_id=run_id, tags=tags, description=description or None, model_id=model_id
        )
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if description:
        client.update_model_version(name, mv.version, description=description)
    return mv


@dataclass
class PromotionResult:
    """What a promotion did: the new champion, the one before it and the figures compared."""

    name: str
    version: str
    previous: str | None
    challenger_metric: float
    champion_metric: float | None
    metric_name: str
    forced: bool
    scored_rows: int = 0  # rows of the input example the challenger scored before it was promoted

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON)."""
        return self.__dict__.copy()


def promote(name: str, force: bool = False, *, store: Store, say=None) -> PromotionResult:
    """Make the challenger the champion if it loads, scores its input example and beats the
    champion on the same holdout (``force`` skips the comparison, never the loading).

    Raises :class:`PromotionRefused` when it does not beat the champion, :class:`ChallengerBroken`
    when it does not load or score, and a :class:`UserError` when there is no challenger; in each
    case the registry stays exactly as it was (moving the alias is the one write, and the last step).
    """
    if name not in MODEL_NAMES:
        raise UserError(f"Unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}.")
    with store_lock(store, f"registered model {name}", say):
        challenger = get_alias(name, CHALLENGER, store=store)
        if challenger is None:
            raise UserError(f"Model {name!r} has no challenger: train it with --register first.")
        champion = get_alias(name, CHAMPION, store=store)
        if champion is not None and champion.version == challenger.version:
            raise UserError(f"Version {challenger.version} of {name!r} is already the champion.")
        if champion is not None and not force:
            _gate(name, challenger, champion)
        scored = check_serves(challenger, champion)
        MlflowClient().set_registered_model_alias(name, CHAMPION, challenger.version)
    return PromotionResult(
        name=name,
        version=challenger.version,
        previous=None if champion is None else champion.version,
        challenger_metric=challenger.metric_value,
        champion_metric=challenger.champion_metric if champion is not None else None,
        metric_name=challenger.metric_name,
        forced=force,
        scored_rows=scored,
    )


def check_serves(version: VersionInfo, champion: VersionInfo | None = None) -> int:
    """Load ``version`` as the service does and score the input example logged with it; returns
    the rows scored (0 for a model logged without an example). Raises :class:`ChallengerBroken`
    with the cause when either step fails."""
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(version.uri)
        example = model.input_example
        if example is None:
            return 0
        scores = model.predict(example)
        if len(scores) == 0:
            raise ValueError("it scored its input example with an empty answer")
        return len(example)
    except Exception as exc:  # any failure to load or score means it must not serve
        stays = "there is still no champion" if champion is None else f"v{champion.version} stays champion"
        raise ChallengerBroken(
            f"Challenger {version.name} v{version.version} was not promoted: it does not load and score"
            f" its input example ({type(exc).__name__}: {_first_line(exc)}); {stays}."
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def _gate(name: str, challenger: VersionInfo, champion: VersionInfo) -> None:
    """Raise :class:`PromotionRefused` unless the challenger beat the champion's figure on its holdout."""
    reference = challenger.champion_metric
    if reference is None:
        raise PromotionRefused(
            f"The challenger of {name!r} (version {challenger.version}) was registered before"
            f" version {champion.version} became champion, so they were never compared on the"
            " same holdout: retrain with --register, or promote with --force."
        )
    better = (
        challenger.metric_value > reference
        if challenger.higher_is_better
        else challenger.metric_value < reference
    )
    if not better:
        raise PromotionRefused(
            f"Challenger {name} v{challenger.version} has {challenger.metric_name}"
            f" {challenger.metric_value:.4f}, not better than champion v{champion.version}'s"
            f" {reference:.4f} on the same holdout: the champion stays (use --force to override)."
        )


def holdout_key(**parts: object) -> str:
    """A stable key of what defines a holdout (data fingerprint, dates, windows, split)."""
    return json.dumps(parts, sort_keys=True, default=str)


def registration_note(name: str, registered: str, holder: str | None) -> str:
    """One sentence on a registration: the version registered and, truthfully, the one holding
    alias ``challenger`` (a later one when another job registered after this one)."""
    if holder == registered:
        return f"registered {name} v{registered} as challenger"
    held = "no version" if holder is None else f"v{holder}"
    return f"registered {name} v{registered}; challenger is {held}, registered by another job after this one"
