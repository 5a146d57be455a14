"""MLflow tracking set-up and the model registry gate (aliases ``challenger`` and ``champion``).

A training run registers its model as a new version with alias ``challenger`` and records, as
version tags, its holdout metric and the current champion's metric on the same holdout (the job
scores the champion itself). ``promote`` moves ``champion`` to the challenger only if it beats
that figure, or with ``force``; otherwise it refuses and the aliases stay as they were.
Stages are deprecated in MLflow 3: only aliases are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

import mlflow
from features.errors import UserError
from features.store import Store
from features.vocab import MODEL_NAMES
from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"


class PromotionRefused(UserError):
    """The challenger does not beat the champion on the same holdout."""


def configure_tracking(store: Store) -> str:
    """Point MLflow at ``store``; create the embedded store's folder. Returns the tracking URI."""
    uri = store.tracking
    if store.embedded:
        store.root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment(name: str, store: Store) -> str:
    """Use (and create if needed) an experiment whose artifacts live under the embedded store."""
    configure_tracking(store)
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        location = store.artifact_root + f"/{name}" if store.embedded else None
        exp_id = client.create_experiment(name, artifact_location=location)
    else:
        exp_id = found.experiment_id
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
) -> VersionInfo:
    """Register ``model_uri`` as a new version of ``name`` and give it alias ``challenger``."""
    configure_tracking(store)
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"CRM {name} model; aliases champion/challenger")
    mv = mlflow.register_model(model_uri, name)
    tags = {
        "holdout_key": holdout_key,
        "holdout_metric": metric_name,
        "holdout_metric_value": repr(float(metric_value)),
        "higher_is_better": "true" if higher_is_better else "false",
        "champion_metric_on_holdout": "none" if champion_metric is None else repr(float(champion_metric)),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, mv.version, key, value)
    if description:
        client.update_model_version(name, mv.version, description=description)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return _info(name, client.get_model_version(name, mv.version))


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

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON)."""
        return self.__dict__.copy()


def promote(name: str, force: bool = False, *, store: Store) -> PromotionResult:
    """Make the challenger the champion if it beats the champion on the same holdout.

    Raises :class:`PromotionRefused` (aliases untouched) when it does not, and a
    :class:`UserError` when there is no challenger.
    """
    if name not in MODEL_NAMES:
        raise UserError(f"Unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}.")
    challenger = get_alias(name, CHALLENGER, store=store)
    if challenger is None:
        raise UserError(f"Model {name!r} has no challenger: train it with --register first.")
    champion = get_alias(name, CHAMPION, store=store)
    if champion is not None and champion.version == challenger.version:
        raise UserError(f"Version {challenger.version} of {name!r} is already the champion.")
    if champion is not None and not force:
        _gate(name, challenger, champion)
    MlflowClient().set_registered_model_alias(name, CHAMPION, challenger.version)
    return PromotionResult(
        name=name,
        version=challenger.version,
        previous=None if champion is None else champion.version,
        challenger_metric=challenger.metric_value,
        champion_metric=challenger.champion_metric if champion is not None else None,
        metric_name=challenger.metric_name,
        forced=force,
    )


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
