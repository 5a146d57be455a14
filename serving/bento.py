"""A self-contained Bento: the champions and the online snapshot in the BentoML model store.

``crm serve --import-models`` copies them there (:func:`import_models`). The service declares them
as BentoML model references (:func:`reference`, a ``bentoml.models.BentoModel``, as class
attributes of :class:`serving.service.CRMService`), so ``bentoml build`` (``bentofile.yaml`` at the
repository root) packs them into the Bento. A reference names no version: the build resolves it
to the newest version in the model store and writes that concrete tag (``crm-churn:<version>``)
into the Bento's ``bento.yaml``. That is the pin. Outside a Bento the references are only
declarations: ``crm serve`` and ``bentoml serve`` from the repository load the MLflow champions,
and start whether or not the model store holds these models.

A service running from a built Bento (BentoML then sets ``CRMService.bento``) calls :func:`pin`
with it and loads exactly those tags (:func:`load_model`, :func:`snapshot_path`): from the Bento's
own ``models/`` folder in a container, from the local model store after ``bentoml serve
crm:<version>``, never a newer import. ``CRM_MODEL_SOURCE=bento`` outside a Bento loads the
newest version in the model store, reported by its concrete tag.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from serving.config import ServiceSettings
from serving.registry import LoadedModel, ModelNotFound, resolve_model_uri

CHURN = "crm-churn"
RECOMMENDER = "crm-recommender"
SNAPSHOT = "crm-online-snapshot"
NAMES = (CHURN, RECOMMENDER, SNAPSHOT)

# name -> the tag the running Bento was built with (empty: no Bento, the newest in the store)
_pinned: dict[str, str] = {}


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


def reference(name: str) -> Any:
    """A BentoML model reference to ``name``, for a class attribute of the service: ``bentoml build``
    packs the newest version (and, without one, says to import first); a Bento resolves the pinned
    tag. Unlike a plain ``BentoModel``, serving outside a Bento does not need it: ``bentoml serve``
    resolves every declared model before it starts, and one the store lacks is skipped, not fatal."""
    return _reference_class()(name)


@functools.cache
def _reference_class() -> type:
    """The class of :func:`reference`, defined on first use: importing BentoML takes a second, and
    the batch commands import this module without serving."""
    import attrs
    from bentoml.exceptions import NotFound
    from bentoml.models import BentoModel

    @attrs.frozen
    class PackedModel(BentoModel):
        def to_info(self, alias: str | None = None) -> Any:  # what `bentoml build` records
            if self.stored is None:
                raise NotFound(
                    f"No model {self.tag} in the BentoML model store {model_store_path()}: run"
                    " `crm serve --import-models` before `bentoml build`."
                )
            return super().to_info(alias)

        def resolve(self, base_path: Any = None) -> Any:  # what `bentoml serve` checks at start
            return None if self.stored is None else super().resolve(base_path)

    return PackedModel


def pin(built: Any) -> dict[str, str]:
    """Load the model versions ``built`` (the ``bentoml.Bento`` being served) records; returns them."""
    tags = {m.tag.name: str(m.tag) for m in built.info.all_models if m.tag.name in NAMES}
    _pinned.clear()
    _pinned.update(tags)
    return tags


def pinned() -> dict[str, str]:
    """The tags :func:`pin` recorded (empty outside a Bento)."""
    return dict(_pinned)


def model_store_path() -> str:
    """The folder of the BentoML model store this process reads (the Bento's own in a container)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    store = BentoMLContainer.model_store.get()
    return str(getattr(store, "_path", store))  # a Store keeps its folder there (no public name)


def where() -> str:
    """What the service looks for and where, for messages."""
    tags = [_pinned.get(name, f"the newest {name}") for name in NAMES]
    return f"{', '.join(tags)} in the BentoML model store {model_store_path()}"


def _stored(name: str) -> Any:
    """The stored model ``name`` at its pinned version; :class:`ModelNotFound` naming the store."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = _pinned.get(name, name)
    try:
        return bentoml.models.get(tag)
    except NotFound:
        hint = (
            "the Bento was built with it, but the model store no longer has it: rebuild the Bento"
            if name in _pinned
            else "run `crm serve --import-models`, then `bentoml build` from the repository root"
        )
        raise ModelNotFound(
            f"No model {tag} in the BentoML model store {model_store_path()}: {hint}."
        ) from None


def load_model(name: str) -> LoadedModel:
    """The Python model imported as ``name`` (the pinned version in a Bento), its BentoML tag and
    the MLflow version it came from."""
    import bentoml.mlflow

    model = _stored(name)
    version = model.info.labels.get("version", str(model.tag.version))
    return LoadedModel(bentoml.mlflow.load_model(model).unwrap_python_model(), str(model.tag), version)


def snapshot_path() -> Path:
    """The online snapshot imported into the model store (the pinned version in a Bento)."""
    return Path(_stored(SNAPSHOT).path)
