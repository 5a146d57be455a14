"""Process and registry faults (issue 18, items 1-4): the service as an operator breaks it.

Items 1 and 2 start `crm serve` as a real process (the supervisor and its worker); items 3 and 4
run the service in process against a private copy of the registry, whose champion a test may
break. Waits are bounded loops with generous limits: they assert behaviour, not speed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from features.store import Store
from tests.server import free_port, stop_session
from tests.serving.conftest import ServingEnv, start_client


def wait_for(probe: Callable[[], Any], seconds: float, what: str) -> Any:
    """``probe()`` once it is truthy, polled until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.2)


def get(url: str) -> httpx.Response | None:
    """The response, or None when nothing answers (connection refused)."""
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def status(url: str) -> int | None:
    r = get(url)
    return None if r is None else r.status_code


@contextlib.contextmanager
def crm_serve(env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen]:
    """`crm serve --port PORT` in a session of its own (its pid is the supervisor's once it has
    exec'd BentoML); stopped at the end with its group (the supervisor stops its workers)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        stop_session(proc)


def server_env(serving_env: ServingEnv, **extra: str) -> dict[str, str]:
    """What `crm serve` runs under: the serving registry, no token, /info and /reload open."""
    env = {
        **os.environ,
        **serving_env.env,
        "CRM_RELOAD_POLL_SECONDS": "0",
        "CRM_OPEN_OPERATIONS": "1",
        **extra,
    }
    env.pop("CRM_API_TOKEN", None)
    return env


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- 1. the worker dies with its supervisor; a busy port is one sentence ----------------------------


def test_the_worker_stops_when_its_supervisor_is_killed(serving_env, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with crm_serve(server_env(serving_env), tmp_path / "serve.log", port) as supervisor:
        wait_for(lambda: status(f"{base}/readyz") == 200, 240, "/readyz 200")
        workers = psutil.Process(supervisor.pid).children(recursive=True)
        assert workers, "the supervisor started no worker"
        try:
            os.kill(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
            wait_for(lambda: not any(alive(w) for w in workers), 60, "the orphaned worker's exit")
            assert get(f"{base}/readyz") is None  # nothing listens on the port any more
        finally:  # workers run in process groups of their own: an orphan is stopped here
            for worker in workers:
                with contextlib.suppress(psutil.Error):
                    worker.kill()


def test_a_busy_port_is_one_sentence_and_exit_2(serving_env):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crm.cli", "serve", "--port", str(port)],
            env=server_env(serving_env), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and f"Port {port}" in lines[0] and "already in use" in lines[0], lines


# --- 2. the registry unreachable at start ------------------------------------------------------------


def test_an_unreachable_registry_leaves_health_up_and_readiness_naming_it(serving_env, tmp_path):
    registry = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with crm_serve(server_env(serving_env, MLFLOW_TRACKING_URI=registry), tmp_path / "serve.log", port):
        wait_for(lambda: status(f"{base}/healthz") == 200, 60, "/healthz 200")

        def readiness_names_the_cause() -> httpx.Response | None:
            r = get(f"{base}/readyz")
            return r if r is not None and "unreachable" in r.text else None

        ready = wait_for(readiness_names_the_cause, 60, "/readyz naming the unreachable registry")
        assert ready.status_code == 503 and registry in ready.text
        info = httpx.post(f"{base}/info", timeout=5).json()
        assert info["ready"] is False and registry in info["last_reload_error"]
        assert "train and promote" not in info["last_reload_error"]


def test_a_missing_sqlite_store_is_reported_and_never_created(serving_env, tmp_path):
    typo = tmp_path / "mlfow.db"
    c = start_client(serving_env, MLFLOW_TRACKING_URI=f"sqlite:///{typo}", CRM_STORE_DIR=str(tmp_path))
    try:
        r = c.get("/readyz")
        assert r.status_code == 503 and "does not exist" in r.text and str(typo) in r.text
        assert c.get("/healthz").status_code == 200
    finally:
        c.__exit__(None, None, None)
    assert not typo.exists()


def test_a_missing_alias_is_named_as_such(private_store):
    c = start_client(private_store.serving_env, **private_store.env, CRM_CHURN_MODEL_URI="models:/churn@nope")
    try:
        r = c.get("/readyz")
        assert r.status_code == 503 and "alias 'nope'" in r.text and "unreachable" not in r.text
    finally:
        c.__exit__(None, None, None)


# --- 3. reloads run off the request threads ----------------------------------------------------------


def _patch_load_state(monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[Callable], Callable]) -> None:
    """Replace ``load_state`` where the service looks it up (serving.state; serving.service too,
    where a version of the service imported it by name)."""
    import serving.service
    import serving.state

    patched = wrapper(serving.state.load_state)
    monkeypatch.setattr(serving.state, "load_state", patched)
    monkeypatch.setattr(serving.service, "load_state", patched, raising=False)


def test_a_hung_reload_answers_within_its_timeout_and_blocks_no_endpoint(serving_env, monkeypatch):
    c = start_client(serving_env, CRM_RELOAD_TIMEOUT_SECONDS="1")
    release = threading.Event()
    _patch_load_state(monkeypatch, lambda real: lambda settings: release.wait(120) and real(settings))
    customers = serving_env.known_customers[:5]
    try:
        before = c.post("/info").json()
        with ThreadPoolExecutor(max_workers=12) as pool:
            try:
                reloads = [pool.submit(c.post, "/reload") for _ in range(6)]  # more than the request threads
                time.sleep(0.5)
                lists = [pool.submit(c.post, "/churn_list", json={"limit": 5}) for _ in range(3)]
                batch = pool.submit(c.post, "/recommend_batch", json={"customer_ids": customers, "k": 3})
                for answer in [*lists, batch]:
                    assert answer.result(timeout=30).status_code == 200
                for answer in reloads:
                    r = answer.result(timeout=30)
                    assert r.status_code == 503 and r.json()["reloaded"] is False
                    assert "still running" in r.json()["error"]
            finally:
                release.set()  # the hung registry answers: whatever still waits can finish
        wait_for(lambda: c.post("/info").json()["reloads"] > before["reloads"], 60, "the reload's end")
        after = c.post("/info").json()
        assert after["reloads"] == before["reloads"] + 1  # the six calls shared one reload
        assert after["last_reload_error"] is None
    finally:
        release.set()
        c.__exit__(None, None, None)


def test_a_registry_down_while_serving_fails_a_reload_at_once(serving_env):
    import bentoml

    c = start_client(serving_env)
    try:
        service = bentoml.get_current_service()
        registry = f"http://127.0.0.1:{free_port()}"
        service.settings = service.settings.model_copy(update={"tracking_uri": registry})
        r = c.post("/reload")
        assert r.status_code == 503 and r.json()["reloaded"] is False
        assert registry in r.json()["last_reload_error"] and "unreachable" in r.json()["last_reload_error"]
        assert c.post("/churn_list", json={"limit": 3}).status_code == 200  # the old models still serve
    finally:
        c.__exit__(None, None, None)


# --- 4. a broken champion: the last served version, backoff, no stale error -------------------------


class PrivateStore:
    """A copy of the serving registry (its versions point at the same files) whose aliases a test
    may move, and the environment that points the service at it."""

    def __init__(self, serving_env: ServingEnv, root: Path) -> None:
        root.mkdir(parents=True)
        shutil.copy2(serving_env.store.root / "mlflow.db", root / "mlflow.db")
        self.serving_env = serving_env
        self.store = Store.at(root)
        self.env = self.store.env()
        self.good = serving_env.churn_version

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.store.tracking, self.store.tracking)

    def register_copy(self, folder: Path, broken: bool) -> str:
        """A new churn version whose files are a copy of the good champion's (the pickle
        truncated when ``broken``), made the champion. Returns its version."""
        client = self.client()
        source = urlparse(client.get_model_version_download_uri("churn", self.good)).path
        shutil.copytree(source, folder)
        if broken:
            pickle = folder / "python_model.pkl"
            pickle.write_bytes(pickle.read_bytes()[:64])
        version = client.create_model_version("churn", folder.as_uri()).version
        self.point_champion_at(str(version))
        return str(version)

    def point_champion_at(self, version: str) -> None:
        self.client().set_registered_model_alias("churn", "champion", version)


@pytest.fixture()
def private_store(serving_env: ServingEnv, tmp_path: Path) -> PrivateStore:
    return PrivateStore(serving_env, tmp_path / "store")


def test_a_restart_with_a_broken_champion_serves_the_last_served_version(private_store, tmp_path):
    env = private_store.env
    first = start_client(private_store.serving_env, **env)  # serves the good champion and records it
    first.__exit__(None, None, None)
    broken = private_store.register_copy(tmp_path / "broken", broken=True)

    restarted = start_client(private_store.serving_env, **env)
    try:
        assert restarted.get("/readyz").status_code == 200
        info = restarted.post("/info").json()
        assert info["churn_version"] == private_store.good != broken
        assert "cannot be loaded" in info["last_reload_error"] and "last served" in info["last_reload_error"]
        customers = private_store.serving_env.known_customers[:3]
        scores = restarted.post("/churn_score", json={"customer_ids": customers})
        assert scores.status_code == 200 and scores.json()["model_version"] == private_store.good
    finally:
        restarted.__exit__(None, None, None)

    (private_store.store.root / "served.json").unlink()  # no record: nothing to fall back to
    unrecorded = start_client(private_store.serving_env, **env)
    try:
        r = unrecorded.get("/readyz")
        assert r.status_code == 503 and "cannot be loaded" in r.text
        assert (tmp_path / "broken").as_uri() in r.text  # the files it could not load
    finally:
        unrecorded.__exit__(None, None, None)


def test_the_poll_backs_off_from_a_broken_champion_and_forgets_the_error_after_the_fix(
    private_store, service_env, monkeypatch, tmp_path
):
    from serving.service import CRMService

    private_store.serving_env.apply(monkeypatch, **private_store.env)
    service = CRMService.inner()
    served = service._state
    assert served is not None and served.churn_version == private_store.good
    now = [0.0]
    service.clock = lambda: now[0]
    service.settings = service.settings.model_copy(update={"reload_poll_seconds": 10.0})
    loads: list[float] = []

    def counted(real):
        def load(settings):
            loads.append(now[0])
            return real(settings)

        return load

    _patch_load_state(monkeypatch, counted)
    private_store.register_copy(tmp_path / "broken", broken=True)
    polls = 0
    for t in range(0, 70, 10):  # one poll per interval for a minute
        now[0] = float(t)
        assert service.poll_once() is False
        polls += 1
    assert service._state is served  # still serving the good version
    assert "cannot be loaded" in service.last_reload_error
    assert 1 < len(loads) < polls  # retried, but not at every poll
    gaps = [b - a for a, b in zip(loads, loads[1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # the waits grow

    private_store.point_champion_at(private_store.good)  # the fix: the alias back on the served version
    now[0] += 10
    assert service.poll_once() is False and service._state is served
    assert service.last_reload_error is None  # no stale error

    fixed = private_store.register_copy(tmp_path / "fixed", broken=False)  # a new, sound champion
    now[0] += 10
    assert service.poll_once() is True
    assert service._state.churn_version == fixed and service.last_reload_error is None
