"""Set-up for the notebooks: which data and which models to report on.

If ``make demo`` has run (``out/demo``, or ``out/tiny`` after ``make demo PRESET=tiny``, and
champions in the configured MLflow store), notebooks report on that. Otherwise they run the tiny
pipeline once into ``out/notebooks`` with a private store (steps are reused by later notebooks), so
they run anywhere, CI included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from features.store import Store


@dataclass
class NotebookContext:
    """Where a notebook finds its data, snapshot and outputs, and which store has the models."""

    root: Path
    data_dir: Path
    online_dir: Path
    work_dir: Path
    tracking_uri: str
    source: str  # "demo" (a `crm demo` run's outputs) or "tiny" (the notebooks' own run)


def repo_root() -> Path:
    """The repository, from the notebooks' folder or from the repository itself."""
    here = Path.cwd()
    return here.parent if here.name == "notebooks" else here


def setup(need_models: bool = True) -> NotebookContext:
    """Find the demo outputs, or build the tiny ones; point MLflow at the store that has them."""
    from crm import settings
    from features.store import Store

    root = repo_root()
    os.chdir(root)  # relative defaults (mlflow/, out/) resolve against the repository
    # where `crm demo --preset P` writes (out/P), the demo preset first
    runs = [root / "out" / preset for preset in ("demo", "tiny")]
    runs = [work for work in runs if (work / "demo_state.json").is_file()]
    store = settings.store()
    if runs and (not need_models or _has_champions(store)):
        work, source = runs[0], "demo"
    else:
        work, source = root / "out" / "notebooks", "tiny"
        store = Store.at(work / "mlflow")
        os.environ.update(store.env())
        # in a child process: logging models from inside a Jupyter kernel hit a recursion error in
        # MLflow's artifact copy here, and `crm demo` is what a person would run anyway
        cmd = [sys.executable, "-m", "crm.cli", "demo", "--preset", "tiny", "--seed", "7",
               "--work-dir", str(work), "--trials", "2", "--epochs", "3", "--no-serve"]  # fmt: skip
        done = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-3000:]}")
    if need_models:
        from training.registry import configure_tracking

        configure_tracking(store)
    return NotebookContext(root, work / "data", work / "online", work, store.tracking, source)


def _has_champions(store: Store) -> bool:
    from training.registry import get_alias

    return all(get_alias(name, "champion", store=store) is not None for name in ("churn", "recommender"))
