"""The model registry as serving reads it: a model URI pinned to one version, and the loaded pyfunc.

Resolving first and loading the pinned version's files means the version we report is the one we
loaded, even if the alias moves meanwhile. The registry is addressed explicitly (no global MLflow
state is changed), so a reload always reads the store the service was configured with.

Serving only reads a registry, it never creates one: a SQLite tracking URI whose file does not
exist is an error here (MLflow would silently create an empty store there). Failures name their
cause: :class:`RegistryUnavailable` (the store cannot be reached or does not exist),
:class:`ModelNotFound` (no such model, alias or version) and :class:`ArtifactUnreadable` (the
version resolves but its files do not load).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from features.errors import UserError

# MLflow's own HTTP retries while serving resolves a model, unless the environment sets them: its
# defaults retry a refused connection for minutes, which kept the service from starting; the
# service retries with a backoff of its own instead.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
# MLflow error codes that mean "the registry answered: there is no such thing"
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class RegistryError(UserError):
    """The champion could not be resolved or loaded; the message names the cause."""


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached, or the store it names does not exist."""


class ModelNotFound(RegistryError):
    """The registry has no such model, alias or version."""


class ArtifactUnreadable(RegistryError):
    """The version resolves but its files cannot be loaded."""


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


_HTTP_SETTINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def bounded_mlflow_http() -> Iterator[None]:
    """MLflow's HTTP client with :data:`MLFLOW_HTTP_DEFAULTS` inside the block, for the variables
    the environment does not set. They are MLflow's only knobs (its client takes no retry
    arguments), so they are set for the block and removed after it, one block at a time."""
    with _HTTP_SETTINGS_LOCK:
        added = [key for key in MLFLOW_HTTP_DEFAULTS if key not in os.environ]
        os.environ.update({key: MLFLOW_HTTP_DEFAULTS[key] for key in added})
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


def sqlite_path(tracking_uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for other URIs and in-memory)."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def check_store_exists(tracking_uri: str | None) -> None:
    """Raise :class:`RegistryUnavailable` when a SQLite registry's file is missing (never create it)."""
    db = sqlite_path(tracking_uri)
    if db is not None and not db.is_file():
        raise RegistryUnavailable(
            f"The registry {tracking_uri} does not exist ({db} is not a file): point"
            " MLFLOW_TRACKING_URI or CRM_STORE_DIR at the store the models were registered in."
        )


def resolve_model_uri(uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """``models:/name@alias`` or ``models:/name/3`` -> the pinned version and its artifacts."""
    from mlflow import MlflowClient

    if not uri.startswith("models:/"):
        return ResolvedModel(uri, uri, uri)
    check_store_exists(tracking_uri)
    ref = uri.removeprefix("models:/")
    name, sep, alias = ref.partition("@")
    try:
        with bounded_mlflow_http():
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            if sep:
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, _, version = ref.rpartition("/")
                mv = client.get_model_version(name, version)
            location = client.get_model_version_download_uri(name, mv.version)
    except Exception as exc:  # MLflow raises MlflowException, requests and SQLAlchemy errors alike
        if getattr(exc, "error_code", None) not in _NOT_FOUND_CODES:
            raise RegistryUnavailable(
                f"The registry at {tracking_uri} is unreachable ({short_reason(exc)})."
            ) from exc
        what = f"alias {alias!r}" if sep else f"version {ref.rpartition('/')[2]!r}"
        raise ModelNotFound(
            f"The registry at {tracking_uri} has no model {name!r} with {what}: train and promote it"
            f" (`crm train {name} --register`, `crm promote {name}`)."
        ) from None
    return ResolvedModel(f"models:/{name}/{mv.version}", str(mv.version), location)


def load_python_model(location: str) -> Any:
    """The Python object behind the pyfunc at ``location`` (a pinned location or any MLflow URI)."""
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(location).unwrap_python_model()
    except Exception as exc:  # a missing file, a truncated pickle, a bad MLmodel: all unreadable
        raise ArtifactUnreadable(
            f"The model files at {location} cannot be loaded ({short_reason(exc)})."
        ) from exc


def short_reason(exc: BaseException) -> str:
    """The gist of an error from deep inside MLflow: the OS reason where there is one."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\"()\]]+)", text)
    if found:
        return found.group(1).strip(" :")
    if "timed out" in text:
        return "timed out"
    first = text.splitlines()[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_registered(
    model_uri: str | None, tracking_uri: str | None, has: str, what: str, optional: bool = False
) -> LoadedModel | None:
    """The model behind ``model_uri``, pinned, checked to be ``what`` (it has the attribute ``has``).

    ``optional``: None when the registry has no such model (or no URI is given) -- an optional
    model the answers do without and say so. An unreachable registry or unreadable files are
    errors either way, never a missing model.
    """
    if not model_uri:
        if optional:
            return None
        raise UserError(f"No URI given for {what}.")
    try:
        ref = resolve_model_uri(model_uri, tracking_uri)
    except ModelNotFound:
        if optional:
            return None
        raise
    model = load_python_model(ref.location)
    if not hasattr(model, has):
        raise UserError(f"The model at {ref.uri} is not {what}.")
    return LoadedModel(model, ref.uri, ref.version)
