"""The registry gate: a worse challenger is not promoted and the aliases stay as they were."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pytest

import mlflow
from features.errors import UserError
from features.store import Store
from training import registry


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


@pytest.fixture()
def gate_store(tmp_path: Path) -> Store:
    """A fresh store of this test's own."""
    return Store.at(tmp_path)


@pytest.fixture()
def model_uri(gate_store: Store):
    """One logged model in the fresh store (the gate only compares recorded figures)."""
    previous = mlflow.get_tracking_uri()
    registry.experiment("gate-test", gate_store)
    with mlflow.start_run():
        uri = mlflow.pyfunc.log_model(name="model", python_model=Constant()).model_uri
    yield uri
    mlflow.set_tracking_uri(previous)  # process-global: give later fixtures the session store back
    mlflow.set_registry_uri(previous)


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
