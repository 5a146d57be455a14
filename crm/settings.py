"""Project settings: where the embedded stores live. Pure functions; nothing happens at import."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE_DIR = "mlflow"


def store_dir() -> Path:
    """The folder of the embedded MLflow store and Optuna studies (``CRM_STORE_DIR`` overrides)."""
    return Path(os.environ.get("CRM_STORE_DIR", DEFAULT_STORE_DIR)).resolve()


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded SQLite store under :func:`store_dir`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_dir() / 'mlflow.db'}"


def store_env(store: Path) -> dict[str, str]:
    """The environment that points every job at the embedded store in ``store`` (a private store
    for tests, benchmarks and notebooks); an outer ``MLFLOW_TRACKING_URI`` would win otherwise."""
    return {"CRM_STORE_DIR": str(store), "MLFLOW_TRACKING_URI": f"sqlite:///{Path(store) / 'mlflow.db'}"}


def artifact_root() -> str:
    """Where new experiments put their artifacts when the embedded store is used."""
    return (store_dir() / "artifacts").as_uri()


def optuna_storage() -> str:
    """The Optuna study storage (``CRM_OPTUNA_STORAGE`` overrides): SQLite beside the MLflow store."""
    return os.environ.get("CRM_OPTUNA_STORAGE") or f"sqlite:///{store_dir() / 'optuna.db'}"


def work_dir() -> Path:
    """Where jobs write derived data by default (``CRM_WORK_DIR`` overrides)."""
    return Path(os.environ.get("CRM_WORK_DIR", "out")).resolve()


def online_snapshot_dir() -> Path:
    """The online snapshot that serving and churn lists read (``CRM_ONLINE_SNAPSHOT`` overrides)."""
    return Path(os.environ.get("CRM_ONLINE_SNAPSHOT", "out/demo/online")).resolve()
