"""What every training run records in MLflow besides its own figures, and the locks that keep
concurrent jobs on one store apart.

- The logged model carries the project code it imports (the ``features`` and ``serving`` packages,
  as ``code_paths``) and pinned requirements of what that code imports, so it loads where the
  repository is not (a container, a notebook elsewhere): never ``crm-ml``, which is on no index.
- The run is tagged with the feature set, the data fingerprint and folder, and the git commit of
  the code when it is a git checkout; its datasets are logged with ``mlflow.log_input``.
- :func:`store_lock` serialises the jobs that share a store folder over one Optuna study or one
  registered model (a file lock: jobs on other machines sharing a remote store are not covered).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.families import FEATURE_SET_NAME, feature_set_version
from features.store import Store

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

# The packages a served model imports; serving never imports training, nothing below crm imports crm.
CODE_PACKAGES = ("features", "serving")
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # where the MLflow UI looks for a run's commit
SCHEMA_ROWS = 1000  # the rows a logged dataset's schema is read from


def code_paths() -> list[str]:
    """The folders of :data:`CODE_PACKAGES`, as ``log_model`` takes them (copied without caches)."""
    import importlib

    return [str(Path(importlib.import_module(name).__file__).parent) for name in CODE_PACKAGES]


def pinned(distributions: Sequence[str]) -> list[str]:
    """``name==version`` of each installed distribution."""
    return [f"{name}=={version(name)}" for name in distributions]


def log_model(python_model: Any, requirements: Sequence[str], **kwargs: Any) -> ModelInfo:
    """Log ``python_model`` as the active run's pyfunc ``model`` with the project code and the
    pinned ``requirements`` (distribution names: what the model's code imports to load and score)."""
    import mlflow

    return mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        code_paths=code_paths(),
        pip_requirements=pinned(("mlflow", "cloudpickle", *requirements)),
        **kwargs,
    )


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out where this code lives (None outside a git checkout or without git)."""
    folder = folder or Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def run_tags(data: Path, fingerprint: str) -> dict[str, str]:
    """The tags every training run carries: feature set, data fingerprint and folder, git commit."""
    tags = {
        "feature_set": FEATURE_SET_NAME,
        "feature_set_version": feature_set_version(),
        "data_fingerprint": fingerprint,
        "data_dir": str(Path(data).resolve()),
    }
    commit = git_commit()
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    return tags


def log_dataset(frame: pd.DataFrame, name: str, context: str, data: Path, targets: str | None = None) -> None:
    """Log ``frame`` (built from the data folder ``data``) as an input of the active run: its name,
    a digest of its rows, its schema, its size and its target column, not the rows themselves.

    MLflow's own pandas dataset infers the schema from every row (minutes on the demo preset), so
    the schema here comes from the first rows and the digest is hashed without Python per cell.
    """
    import warnings

    import pandas as pd
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    import mlflow

    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.md5(rows.tobytes() + "|".join(map(str, frame.columns)).encode()).hexdigest()[:8]
    # MLflow's notes while it describes a frame are not the user's to act on: an integer-schema hint
    # (nothing is checked against this schema), a local path that two of its source kinds match
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(str(Path(data).resolve()))
        schema = infer_signature(frame.head(SCHEMA_ROWS)).inputs
    dataset = MetaDataset(source, name=name, digest=digest, schema=schema)
    tags = {"rows": str(len(frame)), "columns": str(frame.shape[1])} | (
        {"targets": targets} if targets else {}
    )
    mlflow.log_input(dataset, context=context, tags=tags)


def storage_label(uri: str) -> str:
    """A storage URI fit for a tag: any password left out."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except ArgumentError:
        return uri


@contextmanager
def store_lock(store: Store, name: str, say=None) -> Iterator[None]:
    """Hold the exclusive lock ``name`` among the jobs that share ``store``'s folder; ``say`` is told
    when another job holds it and this one waits."""
    folder = store.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".lock")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say:
                say(f"waiting for another job that holds {name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
