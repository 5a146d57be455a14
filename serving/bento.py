"""A self-contained Bento: the champions and the online snapshot in the BentoML model store.

``crm serve --import-models`` copies them there (:func:`import_models`); ``serving/bentofile.yaml``
lists the tags so a built Bento carries them, and with ``CRM_MODEL_SOURCE=bento`` the service loads
them from there (:func:`load_model`), needing neither the MLflow store nor training code.
"""

from __future__ import annotations

from pathlib import Path

from serving.config import ServiceSettings
from serving.registry import LoadedModel, resolve_model_uri

CHURN = "crm-churn"
RECOMMENDER = "crm-recommender"
SNAPSHOT = "crm-online-snapshot"


def import_models(settings: ServiceSettings) -> dict[str, str]:
    """Copy the champions and the online snapshot into the BentoML model store; returns the tags."""
    import shutil

    import bentoml
    import bentoml.mlflow

    tags = {}
    for name, uri in ((CHURN, settings.churn_model_uri), (RECOMMENDER, settings.recommender_model_uri)):
        ref = resolve_model_uri(uri, settings.tracking_uri)
        model = bentoml.mlflow.import_model(
            name, ref.location, labels={"mlflow_uri": ref.uri, "version": ref.version}
        )
        tags[name] = str(model.tag)
    with bentoml.models.create(SNAPSHOT) as model:
        shutil.copytree(settings.online_snapshot, model.path, dirs_exist_ok=True)
    tags[SNAPSHOT] = str(model.tag)
    return tags


def load_model(name: str) -> LoadedModel:
    """The Python model imported as ``name``, its BentoML tag and the MLflow version it came from."""
    import bentoml
    import bentoml.mlflow

    model = bentoml.models.get(name)
    version = model.info.labels.get("version", str(model.tag.version))
    return LoadedModel(bentoml.mlflow.load_model(model).unwrap_python_model(), str(model.tag), version)


def snapshot_path() -> Path:
    """The online snapshot imported into the model store."""
    import bentoml

    return Path(bentoml.models.get(SNAPSHOT).path)
