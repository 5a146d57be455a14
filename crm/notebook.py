"""Set-up for the notebooks: which data and which models to report on.

If ``make demo`` has run (``out/demo``, or ``out/tiny`` after ``make demo PRESET=tiny``, and
champions in the configured MLflow store), notebooks report on that. Otherwise they run the tiny
pipeline (``crm demo --preset tiny``) into ``out/notebooks`` with a private store, in a child
process whose progress lines they print (steps are reused by later notebooks), so they run
anywhere, CI included.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
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


def say(*sentences: str) -> None:
    """Print a figure's reading, computed from the run's numbers, as one paragraph."""
    print(textwrap.fill(" ".join(s.strip() for s in sentences if s), width=100), end="\n\n")


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
        run_tiny_pipeline(root, work)
    if need_models:
        from training.registry import configure_tracking

        configure_tracking(store)
    return NotebookContext(root, work / "data", work / "online", work, store.tracking, source)


def _has_champions(store: Store) -> bool:
    from training.registry import get_alias

    return all(get_alias(name, "champion", store=store) is not None for name in ("churn", "recommender"))


# What the tiny pipeline takes on a 2-core machine: everything the first time, only the steps whose
# inputs changed later (printed, so that a notebook never sits silent for minutes).
FIRST_RUN = "about 2 minutes the first time on a 2-core machine"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours and styles


def run_tiny_pipeline(root: Path, work: Path) -> None:
    """``crm demo --preset tiny`` into ``work`` in a child process, saying so and printing its
    progress lines (not its closing tables); a failure raises with the end of its output.

    A child process: logging models from inside a Jupyter kernel hit a recursion error in MLflow's
    artifact copy here, and `crm demo` is what a person would run anyway."""
    args = ["demo", "--preset", "tiny", "--seed", "7", "--work-dir", _shown(work, root), "--trials", "2",
            "--uplift-trials", "1", "--epochs", "3", "--no-serve"]  # fmt: skip
    # a tiny run written before the simulator had randomised campaigns would be reused for ever
    # (the simulate step's key is the preset and the seed): simulate it again
    if (work / "data").is_dir() and not (work / "data" / "campaigns").exists():
        args.append("--force")
    reused = (work / "demo_state.json").is_file() and "--force" not in args
    how_long = "seconds: its finished steps are reused" if reused else FIRST_RUN
    store = _shown(work / "mlflow", root)
    print(
        f"No `make demo` outputs with champion models: running the tiny pipeline into {_shown(work, root)}"
        f" with its own MLflow store ({store}); {how_long}:\n"
        f"  $ CRM_STORE_DIR={store} {shlex.join(['crm', *args])}",
        flush=True,
    )
    cmd = [sys.executable, "-m", "crm.cli", *args]
    # Jupyter kernels force colours and a terminal (FORCE_COLOR, CLICOLOR_FORCE): plain lines wanted
    forced = ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")
    env = {k: v for k, v in os.environ.items() if k not in forced}
    env |= {"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        tables = False
        for raw in child.stdout:
            line = ANSI.sub("", raw).rstrip()
            lines.append(line)
            tables = tables or line.strip().startswith("crm demo:")  # the closing summary
            if not tables and line.strip():
                print("  " + line, flush=True)
    if child.returncode != 0:
        raise RuntimeError(f"`crm {shlex.join(args)}` failed:\n" + "\n".join(lines)[-3000:])


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to the repository when it is inside it (shorter, and what a person types)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
