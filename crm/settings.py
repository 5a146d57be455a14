"""The command line's reading of the environment: the commands build the store and the default
online snapshot here and hand them to the jobs, which read no variable. Nothing happens at import."""

from __future__ import annotations

import os
from pathlib import Path

from features.store import Store


def store() -> Store:
    """The store that ``CRM_STORE_DIR``, ``MLFLOW_TRACKING_URI`` and ``CRM_OPTUNA_STORAGE`` name
    (by default the embedded one in ``mlflow/``)."""
    return Store.from_env()


def online_snapshot_dir() -> Path:
    """The online snapshot that serving and churn lists read (``CRM_ONLINE_SNAPSHOT`` overrides)."""
    return Path(os.environ.get("CRM_ONLINE_SNAPSHOT", "out/demo/online")).resolve()
