"""A Bento of the tiny models builds and serves itself.

``crm serve --import-models`` copies the tiny champions and snapshot into a private BentoML home,
``bentoml build`` from the repository root packs them, a second import makes newer versions, and
``bentoml serve crm:<version>`` runs from a folder outside the repository with neither
``CRM_MODEL_SOURCE`` nor any MLflow or snapshot variable. It must become ready and answer from the
versions packed at build time: a service that looked for MLflow would never be ready, and one
that loaded the newest versions in the model store would report the second import's tags.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server import free_port, stop_session
from tests.serving.conftest import start_client

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 180.0


def bento_env(home: Path) -> dict[str, str]:
    """This environment without the service's, MLflow's or BentoML's variables, with ``home``."""
    dropped = ("CRM_", "MLFLOW_", "BENTOML_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True", PYTHONUNBUFFERED="1")
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    )
    return proc.stdout + proc.stderr  # the commands' console writes to stderr


def import_models(env: dict[str, str]) -> dict[str, str]:
    """``crm serve --import-models``; the tags it printed, by model name."""
    out = run([sys.executable, "-m", "crm.cli", "serve", "--import-models"], env, REPO)
    tags = dict(re.findall(r"^(crm-[a-z-]+): (\S+)$", out, re.MULTILINE))
    assert set(tags) == {"crm-churn", "crm-recommender", "crm-online-snapshot"}, out
    return tags


@contextlib.contextmanager
def bento_server(tag: str, env: dict[str, str], cwd: Path, log: Path):
    """``bentoml serve TAG`` on a free loopback port until the block ends; yields the base URL once
    /readyz is 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"bentoml serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
                if "Models are not loaded" in ready.text and "still loading" not in ready.text:
                    # a load failed: the Bento lacks something (it would retry, in vain)
                    pytest.fail(f"the Bento is not ready: {ready.text}\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Bento is not ready after {READY_TIMEOUT:g} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        stop_session(proc)


@pytest.mark.slow
def test_built_bento_serves_the_models_it_packed(serving_env, tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    env = bento_env(home)
    importing = {**env, **serving_env.env}  # the tiny store and snapshot: only the import reads them
    packed = import_models(importing)
    out = run([sys.executable, "-m", "bentoml", "build", "-o", "tag"], env, REPO)
    bento_tag = re.search(r"__tag__:(crm:\S+)", out).group(1)
    newer = import_models(importing)  # newer versions in the store: the Bento must not take them
    assert all(newer[name] != packed[name] for name in packed)

    elsewhere = tmp_path / "elsewhere"  # not the repository: no bentofile, no mlflow/, no out/
    elsewhere.mkdir()
    serve_env = {**env, "CRM_OPEN_OPERATIONS": "1"}  # /info without a token
    with bento_server(bento_tag, serve_env, elsewhere, tmp_path / "serve.log") as base:
        customer = serving_env.known_customers[0]
        r = httpx.post(f"{base}/recommend", json={"customer_id": customer, "k": 5}, timeout=30)
        assert r.status_code == 200, r.text
        rec = r.json()
        assert rec["customer_id"] == customer and len(rec["items"]) == 5
        assert rec["model_version"] == serving_env.recommender_version

        r = httpx.post(f"{base}/churn_score", json={"customer_ids": [customer]}, timeout=30)
        assert r.status_code == 200, r.text
        (score,) = r.json()["scores"]
        assert score["known"] is True and 0.0 <= score["churn_probability"] <= 1.0
        assert r.json()["model_version"] == serving_env.churn_version

        info = httpx.get(f"{base}/info", timeout=30).json()
    assert info["churn_model"] == packed["crm-churn"]
    assert info["recommender_model"] == packed["crm-recommender"]
    snapshot_name, snapshot_version = packed["crm-online-snapshot"].split(":")
    assert Path(info["snapshot"]) == home / "models" / snapshot_name / snapshot_version
    assert info["value_model"] is None  # a Bento carries no value model
    bento_dir = home / "bentos" / "crm" / bento_tag.split(":")[1]
    assert not list(elsewhere.rglob("mlflow.db")) and not list(bento_dir.rglob("mlflow.db"))


def test_nothing_loaded_says_what_is_missing_and_where(serving_env, tmp_path: Path, caplog) -> None:
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with caplog.at_level(logging.ERROR, logger="crm.serving"):
        client = start_client(serving_env, MLFLOW_TRACKING_URI=f"sqlite:///{missing}")
        client.__exit__(None, None, None)
    logged = [r.getMessage() for r in caplog.records if r.name == "crm.serving"]
    assert logged and not any("still serving" in m for m in logged)
    assert "nothing is served" in logged[0] and "does not exist" in logged[0]
    assert "models:/churn@champion" in logged[0] and str(missing) in logged[0]
