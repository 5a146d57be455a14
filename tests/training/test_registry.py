"""The registry gate: a worse challenger is not promoted and the aliases stay as they were; a
challenger that does not load and score is never promoted; concurrent jobs register in turn."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

import mlflow
from features.errors import UserError
from features.store import Store
from mlflow import MlflowClient
from training import registry

EXAMPLE = pd.DataFrame({"recency_days": [3.0, 40.0, 200.0]})
NO_INFERENCE = ["mlflow"]  # stated requirements spare MLflow a process that infers them


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


class Refuses(mlflow.pyfunc.PythonModel):
    """Loads, but cannot score the rows it was logged with."""

    def predict(self, context, model_input, params=None):
        raise KeyError("a feature this model was never given")


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for this module's tests (a fresh MLflow store takes seconds to create)."""
    return Store.at(tmp_path_factory.mktemp("gate"))


@pytest.fixture()
def gate_store(module_store: Store):
    """The module's store, active, with no registered model ``churn`` left by an earlier test."""
    previous = mlflow.get_tracking_uri()
    registry.experiment("gate-test", module_store)
    try:
        MlflowClient().delete_registered_model("churn")
    except MlflowException:
        pass
    yield module_store
    mlflow.set_tracking_uri(previous)  # process-global: give later fixtures the session store back
    mlflow.set_registry_uri(previous)


@pytest.fixture()
def model_uri(gate_store: Store) -> str:
    """One logged model in the store (the gate only compares recorded figures)."""
    with mlflow.start_run():
        return mlflow.pyfunc.log_model(
            name="model", python_model=Constant(), pip_requirements=NO_INFERENCE
        ).model_uri


def register(model_uri: str, value: float, champion: float | None, store: Store) -> registry.VersionInfo:
    return registry.register_challenger(
        model_uri, "churn", "holdout-A", "roc_auc", value, champion, store=store
    )


def test_gate_promotes_only_a_better_challenger(model_uri: str, gate_store: Store):
    uri, store = model_uri, gate_store
    first = register(uri, 0.80, None, store)
    assert registry.promote("churn", store=store).version == first.version  # no champion yet

    worse = register(uri, 0.78, champion=0.80, store=store)
    with pytest.raises(registry.PromotionRefused, match=r"0\.7800.*0\.8000"):
        registry.promote("churn", store=store)
    assert registry.get_alias("churn", "champion", store=store).version == first.version
    assert registry.get_alias("churn", "challenger", store=store).version == worse.version

    better = register(uri, 0.83, champion=0.80, store=store)
    result = registry.promote("churn", store=store)
    assert (result.version, result.previous) == (better.version, first.version)
    assert registry.get_alias("churn", "champion", store=store).version == better.version


def test_force_overrides_the_gate(model_uri: str, gate_store: Store):
    store = gate_store
    register(model_uri, 0.80, None, store)
    registry.promote("churn", store=store)
    worse = register(model_uri, 0.70, champion=0.80, store=store)
    assert registry.promote("churn", force=True, store=store).forced
    assert registry.get_alias("churn", "champion", store=store).version == worse.version


def test_promote_without_challenger_is_a_clear_error(model_uri: str, gate_store: Store):
    with pytest.raises(UserError, match="has no challenger"):
        registry.promote("churn", store=gate_store)
    with pytest.raises(UserError, match="Unknown model"):
        registry.promote("pricing", store=gate_store)


def log_with_example(python_model: mlflow.pyfunc.PythonModel) -> str:
    with mlflow.start_run():
        return mlflow.pyfunc.log_model(
            name="model", python_model=python_model, input_example=EXAMPLE,
            signature=infer_signature(EXAMPLE, [0.5] * len(EXAMPLE)), pip_requirements=NO_INFERENCE,
        ).model_uri  # fmt: skip


def remove_pickled_model(model_uri: str) -> None:
    """What a broken artifact store does to a logged model: its pickled model is gone."""
    location = MlflowClient().get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    (Path(url2pathname(urlparse(location).path)) / "python_model.pkl").unlink()


def registry_state(name: str) -> tuple:
    """Everything a promotion could change: the model's aliases, description and last update, and
    each version's description, tags and last update."""
    client = MlflowClient()
    model = client.get_registered_model(name)
    versions = sorted(
        (v.version, v.description, sorted(v.tags.items()), v.last_updated_timestamp)
        for v in client.search_model_versions(f"name='{name}'")
    )
    return sorted(model.aliases.items()), model.description, model.last_updated_timestamp, versions


def test_promotion_scores_the_challengers_input_example_first(model_uri: str, gate_store: Store):
    register(log_with_example(Constant()), 0.80, None, gate_store)
    assert registry.promote("churn", store=gate_store).scored_rows == len(EXAMPLE)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("fault", ["artifacts gone", "cannot score its example"])
def test_a_challenger_that_does_not_load_and_score_is_never_promoted(
    model_uri: str, gate_store: Store, fault: str, force: bool
):
    champion = register(model_uri, 0.80, None, gate_store)
    registry.promote("churn", store=gate_store)
    broken_uri = log_with_example(Constant() if fault == "artifacts gone" else Refuses())
    broken = register(broken_uri, 0.90, champion=0.80, store=gate_store)
    if fault == "artifacts gone":
        remove_pickled_model(broken_uri)
    before = registry_state("churn")
    stays = (
        rf"v{broken.version} was not promoted: it does not load and score.*v{champion.version} stays champion"
    )
    with pytest.raises(registry.ChallengerBroken, match=stays):
        registry.promote("churn", force=force, store=gate_store)
    assert registry_state("churn") == before


def test_experiments_are_marked_as_model_training_for_the_ui(gate_store: Store):
    registry.configure_tracking(gate_store)
    MlflowClient().create_experiment("made-elsewhere")  # without the tag
    for name in ("made-elsewhere", "made-here"):
        registry.experiment(name, gate_store)
        tags = MlflowClient().get_experiment_by_name(name).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_registered_model_is_described_in_prose(model_uri: str, gate_store: Store):
    register(model_uri, 0.80, None, gate_store)
    description = MlflowClient().get_registered_model("churn").description
    assert description == registry.MODEL_DESCRIPTIONS["churn"] and "champion" in description


def test_the_first_registration_survives_another_job_creating_the_model_first(
    model_uri: str, gate_store: Store, monkeypatch: pytest.MonkeyPatch
):
    real_get = MlflowClient.get_registered_model

    def created_meanwhile(self, name):
        monkeypatch.setattr(MlflowClient, "get_registered_model", real_get)
        self.create_registered_model(name)  # the other job, between this job's look-up and its create
        raise MlflowException(f"Registered Model with name={name} not found", "RESOURCE_DOES_NOT_EXIST")

    monkeypatch.setattr(MlflowClient, "get_registered_model", created_meanwhile)
    version = register(model_uri, 0.80, None, gate_store)
    assert version.version == "1" and registry.CHALLENGER in version.aliases


def test_concurrent_registrations_take_turns_and_say_which_version_holds_the_alias(
    model_uri: str, gate_store: Store, monkeypatch: pytest.MonkeyPatch
):
    """The first job is slow to move the alias; the second registers meanwhile. The later version
    ends up with the alias, and each job's sentence says who holds it."""
    real_set = MlflowClient.set_registered_model_alias
    first_is_setting = threading.Event()

    def slow_for_the_first(self, name, alias, version):
        if str(version) == "1":
            first_is_setting.set()
            time.sleep(1.0)
        return real_set(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", slow_for_the_first)
    registered: dict[str, object] = {}

    def job(key: str) -> None:
        try:
            registered[key] = register(model_uri, 0.80, None, gate_store).version
        except Exception as exc:  # reported by the assertion below
            registered[key] = exc

    first = threading.Thread(target=job, args=("first",))
    first.start()
    assert first_is_setting.wait(60)
    second = threading.Thread(target=job, args=("second",))
    second.start()
    first.join(60)
    second.join(60)
    holder = registry.get_alias("churn", registry.CHALLENGER, store=gate_store).version
    assert (registered["first"], registered["second"], holder) == ("1", "2", "2")
    assert registry.registration_note("churn", "2", holder) == "registered churn v2 as challenger"
    assert registry.registration_note("churn", "1", holder) == (
        "registered churn v1; challenger is v2, registered by another job after this one"
    )
