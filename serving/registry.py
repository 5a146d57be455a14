"""The model registry as serving reads it: a model URI pinned to one version, and the loaded pyfunc.

Resolving first and loading the pinned version's files means the version we report is the one we
loaded, even if the alias moves meanwhile. The registry is addressed explicitly (no global MLflow
state is changed), so a reload always reads the store the service was configured with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from features.errors import UserError


@dataclass(frozen=True)
class ResolvedModel:
    """A registry reference pinned to one version, and where its files are."""

    uri: str  # models:/name/<version> (or the URI as given when it is not a registry URI)
    version: str
    location: str  # what to load: the version's artifact location, or the URI itself


class LoadedModel(NamedTuple):
    """A loaded model, the URI it was loaded from and its version."""

    model: Any
    uri: str
    version: str


def resolve_model_uri(uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """``models:/name@alias`` or ``models:/name/3`` -> the pinned version and its artifacts."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    if not uri.startswith("models:/"):
        return ResolvedModel(uri, uri, uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    ref = uri.removeprefix("models:/")
    name, sep, alias = ref.partition("@")
    try:
        if sep:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.rpartition("/")
            mv = client.get_model_version(name, version)
        location = client.get_model_version_download_uri(name, mv.version)
    except MlflowException:
        what = f"alias {alias!r}" if sep else f"version {ref.rpartition('/')[2]!r}"
        raise UserError(
            f"The registry at {tracking_uri} has no model {name!r} with {what}: train and promote it"
            f" (`crm train {name} --register`, `crm promote {name}`)."
        ) from None
    return ResolvedModel(f"models:/{name}/{mv.version}", str(mv.version), location)


def load_python_model(location: str) -> Any:
    """The Python object behind the pyfunc at ``location`` (a pinned location or any MLflow URI)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(location).unwrap_python_model()
