"""Shared fixtures: seeded tiny data and an isolated MLflow store. Nothing touches ./mlflow."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 7

# The tiny churn model's holdout date: its 90-day label window ends inside the tiny data, whose
# last weekly step is 2025-12-22 .. 2025-12-28.
CHURN_AS_OF = "2025-09-28"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic preset (about 2k customers), generated once per test session.

    Treat it as read-only: copy it (see ``tiny_data_copy``) before changing files.
    """
    from features.synth import SynthConfig, run

    out = tmp_path_factory.mktemp("tiny") / "data"
    run(SynthConfig(preset="tiny", seed=TINY_SEED, out=out))
    return out


@pytest.fixture()
def tiny_data_copy(tiny_data: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny preset that a test may change."""
    import shutil

    dest = tmp_path / "data"
    shutil.copytree(tiny_data, dest, ignore=shutil.ignore_patterns("validated", "rejects"))
    return dest


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide embedded MLflow/Optuna store in a temporary folder."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def store(store_dir: Path):
    """The session's embedded store as the value job configs and registry calls take."""
    from features.store import Store

    return Store.at(store_dir)


@pytest.fixture(autouse=True)
def _isolated_store(store, store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every test at the temporary store, never at the repository's mlflow/: the library
    takes ``store`` explicitly; the command line and child processes read this environment."""
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CRM_WORK_DIR", str(store_dir / "work"))
    # `crm recommend` reads the online snapshot by default: never the one `make demo` wrote
    monkeypatch.setenv("CRM_ONLINE_SNAPSHOT", str(store_dir / "online"))
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")
    # set_tracking_uri is process-global in MLflow: undo what a previous test pointed it at
    import mlflow

    mlflow.set_tracking_uri(store.tracking)
    mlflow.set_registry_uri(store.tracking)


@pytest.fixture(scope="session")
def churn_run(tiny_data: Path, store, tmp_path_factory: pytest.TempPathFactory):
    """A churn model trained on the tiny preset, registered and promoted to champion, once.

    Returns the ChurnResult; the metrics JSON is at ``result.extra["metrics_json"]``.
    """
    from training.churn import ChurnTrainConfig, run
    from training.registry import promote

    metrics_json = tmp_path_factory.mktemp("churn") / "metrics.json"
    cfg = ChurnTrainConfig(
        data=tiny_data,
        as_of=CHURN_AS_OF,
        trials=2,
        register_model=True,
        metrics_json=metrics_json,
        store=store,
    )
    result = run(cfg)
    promote("churn", store=store)
    result.extra["metrics_json"] = metrics_json
    return result


@pytest.fixture(scope="session")
def uplift_run(tiny_data: Path, store, tmp_path_factory: pytest.TempPathFactory):
    """An uplift model of the coupon trained on the tiny preset's campaigns (one Optuna trial),
    registered and promoted to champion, once. The metrics JSON is at ``result.extra["metrics_json"]``."""
    from training.registry import promote
    from training.uplift import UpliftTrainConfig, run

    metrics_json = tmp_path_factory.mktemp("uplift") / "metrics.json"
    cfg = UpliftTrainConfig(
        data=tiny_data,
        offers=["coupon"],
        trials=1,
        register_model=True,
        metrics_json=metrics_json,
        store=store,
    )
    result = run(cfg)
    promote("uplift", store=store)
    result.extra["metrics_json"] = metrics_json
    return result
