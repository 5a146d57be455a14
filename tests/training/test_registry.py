"""The registry gate: a worse challenger is not promoted and the aliases stay as they were."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pytest

import mlflow
from features.errors import UserError
from training import registry


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


@pytest.fixture()
def model_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh store with one logged model (the gate only compares recorded figures)."""
    previous = mlflow.get_tracking_uri()
    monkeypatch.setenv("CRM_STORE_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    registry.experiment("gate-test")
    with mlflow.start_run():
        uri = mlflow.pyfunc.log_model(name="model", python_model=Constant()).model_uri
    yield uri
    mlflow.set_tracking_uri(previous)  # process-global: give later fixtures the session store back
    mlflow.set_registry_uri(previous)


def register(model_uri: str, value: float, champion: float | None) -> registry.VersionInfo:
    return registry.register_challenger(model_uri, "churn", "holdout-A", "roc_auc", value, champion)


def test_gate_promotes_only_a_better_challenger(model_uri: str):
    uri = model_uri
    first = register(uri, 0.80, None)
    assert registry.promote("churn").version == first.version  # no champion yet

    worse = register(uri, 0.78, champion=0.80)
    with pytest.raises(registry.PromotionRefused, match=r"0\.7800.*0\.8000"):
        registry.promote("churn")
    assert registry.get_alias("churn", "champion").version == first.version
    assert registry.get_alias("churn", "challenger").version == worse.version

    better = register(uri, 0.83, champion=0.80)
    result = registry.promote("churn")
    assert (result.version, result.previous) == (better.version, first.version)
    assert registry.get_alias("churn", "champion").version == better.version


def test_force_overrides_the_gate(model_uri: str):
    register(model_uri, 0.80, None)
    registry.promote("churn")
    worse = register(model_uri, 0.70, champion=0.80)
    assert registry.promote("churn", force=True).forced
    assert registry.get_alias("churn", "champion").version == worse.version


def test_promote_without_challenger_is_a_clear_error(model_uri: str):
    with pytest.raises(UserError, match="has no challenger"):
        registry.promote("churn")
    with pytest.raises(UserError, match="Unknown model"):
        registry.promote("pricing")
