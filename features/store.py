"""Where the embedded stores live: the MLflow tracking store and registry, and Optuna studies.

A :class:`Store` is a plain value that job configurations and the service settings carry as a
field. Only the edges build one from the environment (:meth:`Store.from_env`: the command line
and the service's start-up); library code takes the value it is given and reads no variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DEFAULT_STORE_DIR = Path("mlflow")


class Store(BaseModel):
    """The embedded store folder, and the tracking and Optuna URIs (defaulting to files in it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path = DEFAULT_STORE_DIR
    tracking_uri: str | None = None  # None: SQLite ``mlflow.db`` in ``dir``
    optuna_storage: str | None = None  # None: SQLite ``optuna.db`` in ``dir``

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Store:
        """``CRM_STORE_DIR``, ``MLFLOW_TRACKING_URI`` and ``CRM_OPTUNA_STORAGE``, where set."""
        env = os.environ if environ is None else environ
        return cls(
            dir=Path(env.get("CRM_STORE_DIR") or DEFAULT_STORE_DIR),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            optuna_storage=env.get("CRM_OPTUNA_STORAGE") or None,
        )

    @classmethod
    def at(cls, folder: Path) -> Store:
        """A private embedded store in ``folder`` (tests, benchmarks, notebooks)."""
        return cls(dir=Path(folder))

    @property
    def root(self) -> Path:
        return self.dir.resolve()

    @property
    def tracking(self) -> str:
        """The MLflow tracking (and registry) URI."""
        return self.tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def optuna(self) -> str:
        """The Optuna study storage."""
        return self.optuna_storage or f"sqlite:///{self.root / 'optuna.db'}"

    @property
    def embedded(self) -> bool:
        """True when tracking is a SQLite file: artifacts then go under this folder."""
        return self.tracking.startswith("sqlite:///")

    @property
    def artifact_root(self) -> str:
        """Where new experiments put their artifacts when the embedded store is used."""
        return (self.root / "artifacts").as_uri()

    def env(self) -> dict[str, str]:
        """The environment that points a child process (a job, the service) at this store."""
        out = {"CRM_STORE_DIR": str(self.root), "MLFLOW_TRACKING_URI": self.tracking}
        if self.optuna_storage:
            out["CRM_OPTUNA_STORAGE"] = self.optuna_storage
        return out
