"""Process and registry faults replayed on a live tiny-preset service, each reported as held or not.

    python -m bench.faults [--work DIR] [--items 1,2,3,4,10] [--out FILE.json]

Every item starts ``crm serve`` on a free loopback port (the tiny preset's champions in a private
store under ``--work``, built on the first run and reused), breaks what issue 18 broke, and
reports what it measured and whether the service held:

1. ``kill -9`` of the supervisor that ``crm serve`` becomes: held when its worker exits and the
   port is free again; and ``crm serve`` on a port already in use exits 2 with one sentence.
2. The registry unreachable at start (nothing listens at its URL): held when /healthz answers
   within 5 s of the service's start (its worker process; the seconds since the launch of
   ``crm serve``, which add the CLI's and BentoML's supervisor's own start, are reported too) and
   /readyz is 503 naming the unreachable registry (not "train and promote it"); a typo'd SQLite
   path is named and no file is created there; a missing alias is named as such.
3. The registry down while serving (a stand-in answering MLflow's registry calls from the
   store, then refusing connections, then accepting them and never answering): held when every
   /reload answers within its timeout, /churn_list and /recommend_batch answer meanwhile, the
   worker's threads do not pile up and /info names the failure.
4. A broken champion (a new version whose pickle is truncated): held when the poll retries it
   with backoff, not at every interval; a restart serves the last served version, ready; and
   /info drops the error once the alias is back on that version.

10. Two ``crm train churn --register`` at once on a fresh store: held when both succeed, the
    Optuna study holds both jobs' trials with no draw repeated, the later version holds
    ``challenger``, and each job says truthfully which version holds it.

Each check is a function ``check(bench) -> {"held": bool, ...}`` listed in :data:`ITEMS`. JSON on
stdout (and ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from bench import emit

ROOT = Path(__file__).resolve().parents[1]
TINY_SEED = 7
HEALTHZ_BAR_SECONDS = 5.0  # the bar: /healthz answers within 5 s of the service's start
RELOAD_TIMEOUT_SECONDS = 5  # CRM_RELOAD_TIMEOUT_SECONDS for item 3 (the default is 20)


# ---------------------------------------------------------------------------------------------
# the tiny preset's champions


def prepare(work: Path) -> dict[str, str]:
    """Tiny data, its online snapshot and churn and recommender champions in ``work/store``; the
    environment that points a service at them."""
    from features.store import Store
    from serving.registry import RegistryError, resolve_model_uri

    store = Store.at(work / "store")
    env = {**store.env(), "CRM_ONLINE_SNAPSHOT": str(work / "online"), "GIT_PYTHON_REFRESH": "quiet"}
    os.environ.update(env)  # MLflow logs the models in this process
    data = work / "data"
    if not (data / "customers.parquet").exists() and not (data / "events").exists():
        from features.synth import SynthConfig
        from features.synth import run as synth

        print(f"simulating the tiny preset into {data}", file=sys.stderr)
        synth(SynthConfig(preset="tiny", seed=TINY_SEED, out=data))
    if not (work / "online" / "manifest.json").exists():
        from features.online import build_online_snapshot

        print("building the online snapshot", file=sys.stderr)
        build_online_snapshot(data, work / "online")
    for name, train in (("churn", _train_churn), ("recommender", _train_recommender)):
        try:
            resolve_model_uri(f"models:/{name}@champion", store.tracking)
        except RegistryError:
            print(f"training the tiny {name} model", file=sys.stderr)
            train(data, store)
    return env


def _train_churn(data: Path, store) -> None:
    from training.churn import ChurnParams, train_fixed

    train_fixed(data, store, "bench-faults", ChurnParams(max_rounds=60, early_stopping=10, num_threads=1))


def _train_recommender(data: Path, store) -> None:
    from training.recommender import RecommenderTrainConfig, run
    from training.registry import promote

    run(RecommenderTrainConfig(data=data, epochs=1, baselines=False, register_model=True, store=store))
    promote("recommender", force=True, store=store)


# ---------------------------------------------------------------------------------------------
# the service as a process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(probe: Callable[[], Any], seconds: float, step: float = 0.1) -> tuple[Any, float]:
    """``probe()``'s first truthy result and the seconds it took; (None, seconds) past the limit."""
    start = time.monotonic()
    while True:
        result = probe()
        elapsed = time.monotonic() - start
        if result or elapsed > seconds:
            return (result or None), round(elapsed, 3)
        time.sleep(step)


def get(url: str, timeout: float = 5) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None


def alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Server:
    """A running ``crm serve``: its process (the supervisor, once BentoML is exec'd), URL, log."""

    proc: subprocess.Popen
    base: str
    log: Path
    launched: float  # time.monotonic() at the launch

    def readyz(self) -> httpx.Response | None:
        return get(f"{self.base}/readyz")

    def readyz_saying(self, text: str, seconds: float = 60) -> httpx.Response | None:
        """The first /readyz answer whose body contains ``text`` (None: not within ``seconds``)."""

        def saying() -> httpx.Response | None:
            r = self.readyz()
            return r if r is not None and text in r.text else None

        return wait_until(saying, seconds)[0]

    def wait_ready(self, seconds: float = 240) -> bool:
        ready, _ = wait_until(lambda: getattr(self.readyz(), "status_code", None) == 200, seconds, 0.3)
        return bool(ready)

    def info(self) -> dict:
        return httpx.post(f"{self.base}/info", timeout=10).json()

    def worker(self):
        import psutil

        children = psutil.Process(self.proc.pid).children(recursive=True)
        return children[0] if children else None


class Bench:
    """Where the runs live, and how a service is started over the tiny champions."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        from features.store import Store

        self.store = Store.at(work / "store")

    def service_env(self, **extra: str) -> dict[str, str]:
        from serving.config import pin_numeric_threads

        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "CRM_OPEN_OPERATIONS": "1", **extra}
        env.pop("CRM_API_TOKEN", None)
        pin_numeric_threads(env)
        return env

    @contextlib.contextmanager
    def serve(self, name: str, **extra: str) -> Iterator[Server]:
        """``crm serve`` on a free port under the tiny champions' environment and ``extra``."""
        port = free_port()
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            launched = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "crm.cli", "serve", "--port", str(port)],
                env=self.service_env(**extra), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            yield Server(proc, f"http://127.0.0.1:{port}", log, launched)
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):  # the supervisor stops its workers
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
                    break
            proc.wait()


# ---------------------------------------------------------------------------------------------
# 1. the supervisor killed; a busy port


def supervisor_killed(bench: Bench) -> dict:
    with bench.serve("1-supervisor-killed") as server:
        if not server.wait_ready():
            return {"held": False, "error": f"the service never became ready; see {server.log}"}
        import psutil

        workers = psutil.Process(server.proc.pid).children(recursive=True)
        try:
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
            gone, seconds = wait_until(lambda: not any(alive(w) for w in workers), 30)
            port_free = server.readyz() is None
        finally:  # workers run in process groups of their own: an orphan is stopped here
            for worker in workers:
                with contextlib.suppress(psutil.Error):
                    worker.kill()
    busy = busy_port(bench)
    return {
        "held": bool(gone) and port_free and busy["held"],
        "workers": len(workers),
        "worker_exit_seconds": seconds if gone else None,
        "port_free_after": port_free,
        "busy_port": busy,
    }


def busy_port(bench: Bench) -> dict:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crm.cli", "serve", "--port", str(port)],
            env=bench.service_env(), cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {
        "held": done.returncode == 2 and len(lines) == 1 and str(port) in lines[0],
        "exit_code": done.returncode,
        "stderr_lines": len(lines),
        "message": lines[0] if len(lines) == 1 else lines[-3:],
    }


# ---------------------------------------------------------------------------------------------
# 2. the registry unreachable at start


def registry_at_start(bench: Bench) -> dict:
    registry = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with bench.serve("2-registry-unreachable", MLFLOW_TRACKING_URI=registry) as server:
        health, _ = wait_until(
            lambda: getattr(get(f"{server.base}/healthz", 1), "status_code", None) == 200, 300
        )
        answered = time.time()
        worker = server.worker()
        after_launch = round(time.monotonic() - server.launched, 3) if health else None
        after_worker = round(answered - worker.create_time(), 3) if health and worker else None
        named = server.readyz_saying("unreachable")
        error = server.info()["last_reload_error"] if named else None
    unreachable = {
        "healthz_seconds_after_worker_start": after_worker,
        "healthz_seconds_after_launch": after_launch,
        "readyz_status": named.status_code if named else None,
        "readyz_body": named.text.strip() if named else None,
        "info_error": error,
        "held": after_worker is not None
        and after_worker <= HEALTHZ_BAR_SECONDS
        and named is not None
        and named.status_code == 503
        and registry in named.text
        and "train and promote" not in (error or "train and promote"),
    }

    folder = bench.work / "typo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    typo = folder / "mlfow.db"
    with bench.serve(
        "2-sqlite-typo", MLFLOW_TRACKING_URI=f"sqlite:///{typo}", CRM_STORE_DIR=str(folder)
    ) as server:
        named = server.readyz_saying("does not exist")
    sqlite_typo = {
        "readyz_body": named.text.strip() if named else None,
        "store_created": typo.exists(),
        "held": named is not None and named.status_code == 503 and not typo.exists(),
    }

    with bench.serve("2-alias-missing", CRM_CHURN_MODEL_URI="models:/churn@nope") as server:
        named = server.readyz_saying("alias 'nope'")
    alias_missing = {
        "readyz_body": named.text.strip() if named else None,
        "held": named is not None and named.status_code == 503 and "unreachable" not in named.text,
    }
    held = unreachable["held"] and sqlite_typo["held"] and alias_missing["held"]
    return {
        "held": held,
        "unreachable": unreachable,
        "sqlite_typo": sqlite_typo,
        "alias_missing": alias_missing,
    }


# ---------------------------------------------------------------------------------------------
# 3. the registry down while serving


class RegistryStandIn:
    """The registry calls serving makes (an alias, a model, a version, its files), answered over HTTP
    from the bench's store, on a port that can also refuse connections (``refuse``) or accept
    them and never answer (``hang``)."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri, tracking_uri)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadingHTTPServer | None = None
        self.hole: socket.socket | None = None
        self.mode("serve")

    def mode(self, mode: str) -> None:
        self.close()
        if mode == "serve":
            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        elif mode == "hang":  # the kernel completes connections into the backlog; nobody reads
            self.hole = socket.socket()
            self.hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.hole.bind(("127.0.0.1", self.port))
            self.hole.listen(128)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.hole is not None:
            self.hole.close()
            self.hole = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        from mlflow.exceptions import MlflowException
        from mlflow.utils.proto_json_utils import message_to_json

        client = self.client

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    if url.path.endswith("/registered-models/alias"):
                        mv = client.get_model_version_by_alias(q["name"], q["alias"])
                        body = '{"model_version": ' + message_to_json(mv.to_proto()) + "}"
                    elif url.path.endswith("/registered-models/get"):
                        model = client.get_registered_model(q["name"])
                        body = '{"registered_model": ' + message_to_json(model.to_proto()) + "}"
                    elif url.path.endswith("/model-versions/get"):
                        mv = client.get_model_version(q["name"], q["version"])
                        body = '{"model_version": ' + message_to_json(mv.to_proto()) + "}"
                    elif url.path.endswith("/model-versions/get-download-uri"):
                        uri = client.get_model_version_download_uri(q["name"], q["version"])
                        body = json.dumps({"artifact_uri": uri})
                    else:
                        return self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": url.path})
                except MlflowException as exc:
                    return self._reply(404, {"error_code": exc.error_code, "message": str(exc)})
                self._reply(200, body)

            def _reply(self, status: int, body: dict | str) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def registry_down_while_serving(bench: Bench) -> dict:
    stand_in = RegistryStandIn(bench.store.tracking)
    extra = {"MLFLOW_TRACKING_URI": stand_in.url, "CRM_RELOAD_TIMEOUT_SECONDS": str(RELOAD_TIMEOUT_SECONDS)}
    try:
        with bench.serve("3-registry-down", **extra) as server:
            if not server.wait_ready():
                return {"held": False, "error": f"the service never became ready; see {server.log}"}
            worker = server.worker()
            _warm_request_threads(server)
            threads_before = worker.num_threads()
            phases = {}
            for mode in ("refuse", "hang"):
                stand_in.mode(mode)
                phases[mode] = _reloads_beside_requests(server)
            threads_after = worker.num_threads()
            stand_in.mode("serve")
            recovered, seconds = wait_until(lambda: _reload_ok(server), 120, 1.0)
    finally:
        stand_in.close()
    bar = RELOAD_TIMEOUT_SECONDS + 5
    held = (
        all(
            p["reload_max_seconds"] <= bar and p["others_all_200"] and p["others_max_seconds"] <= 5
            for p in phases.values()
        )
        and "unreachable" in (phases["refuse"]["info_error_when_answered"] or "")
        and threads_after - threads_before <= 2
        and bool(recovered)
    )
    return {
        "held": held,
        "reload_timeout_seconds": RELOAD_TIMEOUT_SECONDS,
        "phases": phases,
        "worker_threads": {"before": threads_before, "after": threads_after},
        "reloaded_after_recovery_seconds": seconds if recovered else None,
    }


def _warm_request_threads(server: Server) -> None:
    """Start the worker's request threads (created on first use) before counting its threads."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(
            pool.map(
                lambda _: httpx.post(f"{server.base}/churn_list", json={"limit": 1}, timeout=60), range(6)
            )
        )


def _reloads_beside_requests(server: Server) -> dict:
    """Four /reload at once (as many as the request threads), and /churn_list and /recommend_batch
    while they run: how long each took, and what /info said when the reloads had answered."""

    def timed(method: str, path: str, body: dict | None = None) -> tuple[int | None, float]:
        start = time.monotonic()
        try:
            status = httpx.request(method, server.base + path, json=body, timeout=120).status_code
        except httpx.HTTPError:
            status = None
        return status, round(time.monotonic() - start, 3)

    with ThreadPoolExecutor(max_workers=8) as pool:
        reloads = [pool.submit(timed, "POST", "/reload") for _ in range(4)]
        time.sleep(0.3)
        others = [
            pool.submit(timed, "POST", "/churn_list", {"limit": 10}),
            pool.submit(timed, "POST", "/recommend_batch", {"customer_ids": ["C0000001", "unknown"], "k": 5}),
            pool.submit(timed, "POST", "/churn_list", {"limit": 10}),
        ]
        reload_results = [f.result() for f in reloads]
        other_results = [f.result() for f in others]
    return {
        "reload_statuses": [s for s, _ in reload_results],
        "reload_max_seconds": max(t for _, t in reload_results),
        "others_all_200": all(s == 200 for s, _ in other_results),
        "others_max_seconds": max(t for _, t in other_results),
        "info_error_when_answered": server.info()["last_reload_error"],
    }


def _reload_ok(server: Server) -> bool:
    r = httpx.post(f"{server.base}/reload", timeout=60)
    return r.status_code == 200 and r.json()["last_reload_error"] is None


# ---------------------------------------------------------------------------------------------
# 4. a broken champion


def broken_champion(bench: Bench, watch_seconds: float = 20.0) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(bench.store.tracking, bench.store.tracking)
    good = str(client.get_model_version_by_alias("churn", "champion").version)
    poll = {"CRM_RELOAD_POLL_SECONDS": "1"}
    try:
        with bench.serve("4-broken-champion", **poll) as server:
            if not server.wait_ready():
                return {"held": False, "error": f"the service never became ready; see {server.log}"}
            before = _failed_loads(server.log)
            broken = _register_broken_copy(client, good, bench.work / "broken")
            time.sleep(watch_seconds)
            attempts = _failed_loads(server.log) - before
            error_while_broken = server.info()["last_reload_error"]
        with bench.serve("4-restart-while-broken", **poll) as server:
            ready = server.wait_ready(120)
            info = server.info() if ready else {}
            client.set_registered_model_alias("churn", "champion", good)  # the fix
            cleared, seconds = wait_until(lambda: server.info()["last_reload_error"] is None, 30, 0.5)
    finally:
        client.set_registered_model_alias("churn", "champion", good)
    polls = int(watch_seconds)
    held = (
        0 < attempts <= polls // 2
        and ready
        and info.get("churn_version") == good
        and "last served" in (info.get("last_reload_error") or "")
        and bool(cleared)
    )
    return {
        "held": held,
        "good_version": good,
        "broken_version": broken,
        "poll": {"interval_seconds": 1, "watched_seconds": watch_seconds, "failed_loads": attempts},
        "error_while_broken": error_while_broken,
        "restart": {
            "ready": ready,
            "served_version": info.get("churn_version"),
            "last_reload_error": info.get("last_reload_error"),
        },
        "error_cleared_after_fix_seconds": seconds if cleared else None,
    }


def _register_broken_copy(client, version: str, folder: Path) -> str:
    """A new churn version whose files are a copy of ``version``'s with the pickle truncated, made
    the champion."""
    source = urlparse(client.get_model_version_download_uri("churn", version)).path
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    pickle = folder / "python_model.pkl"
    pickle.write_bytes(pickle.read_bytes()[:64])
    broken = str(client.create_model_version("churn", folder.as_uri()).version)
    client.set_registered_model_alias("churn", "champion", broken)
    return broken


def _failed_loads(log: Path) -> int:
    return log.read_text(errors="replace").count("model load failed")


# ---------------------------------------------------------------------------------------------
# item 10: two registering jobs at once

CONCURRENT_TRIALS = 2  # each job's --trials


def concurrent_registrations(bench: Bench) -> dict:
    """Two ``crm train churn --register`` at once on a fresh store: held when both succeed, the
    study holds both jobs' trials with no draw repeated, both versions are registered, the
    challenger alias is on the later one, and each job's note was true when it said it."""
    import optuna

    from features.store import Store
    from training.registry import get_alias

    store = Store.at(bench.work / "item10" / "store")
    shutil.rmtree(store.root, ignore_errors=True)
    store.root.mkdir(parents=True)
    env = {**os.environ, **store.env(), "PYTHONPATH": str(ROOT), "GIT_PYTHON_REFRESH": "quiet"}
    cmd = [sys.executable, "-m", "crm.cli", "train", "churn", "--data", str(bench.work / "data"),
           "--as-of", "2025-09-28", "--trials", str(CONCURRENT_TRIALS), "--register"]  # fmt: skip
    jobs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in "ab"
    ]
    outputs = [job.communicate(timeout=900)[0] for job in jobs]
    codes = [job.returncode for job in jobs]
    summaries = optuna.get_all_study_summaries(store.optuna)
    trials = [t for summary in summaries for t in optuna.load_study(
        study_name=summary.study_name, storage=store.optuna).trials]  # fmt: skip
    draws = {json.dumps(t.params, sort_keys=True) for t in trials}
    challenger = get_alias("churn", "challenger", store=store)
    notes = [next((line for line in out.splitlines() if "registered churn" in line), "") for out in outputs]
    holder = None if challenger is None else challenger.version
    # each note is true when said: the job that registered last says it holds the alias, one
    # that registered first said so then or names the later holder
    own = [note.split("registered churn v", 1)[1].split()[0].rstrip(";") if note else "" for note in notes]
    truthful = all("as challenger" in note or f"challenger is v{holder}" in note for note in notes) and any(
        mine == holder and "as challenger" in note for mine, note in zip(own, notes, strict=True)
    )
    held = (
        codes == [0, 0]
        and len(trials) == 2 * CONCURRENT_TRIALS
        and len(draws) == len(trials)
        and holder == "2"
        and truthful
    )
    return {
        "held": held,
        "exit_codes": codes,
        "trials": len(trials),
        "distinct_draws": len(draws),
        "challenger": holder,
        "registration_notes": notes,
    }


# ---------------------------------------------------------------------------------------------
# the run

# item -> (what it replays, its check)
ITEMS: dict[str, tuple[str, Callable[[Bench], dict]]] = {
    "1": ("kill -9 of the supervisor; a busy port", supervisor_killed),
    "2": ("the registry unreachable at start", registry_at_start),
    "3": ("the registry down while serving", registry_down_while_serving),
    "4": ("a broken champion", broken_champion),
    "10": ("two `crm train churn --register` at once", concurrent_registrations),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "out/bench/faults", help="models, data and logs")
    parser.add_argument("--items", default=",".join(ITEMS), help=f"which items (of {', '.join(ITEMS)})")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    wanted = [i.strip() for i in args.items.split(",") if i.strip()]
    unknown = [i for i in wanted if i not in ITEMS]
    if unknown:
        parser.error(f"unknown items {', '.join(unknown)}: expected some of {', '.join(ITEMS)}")

    bench = Bench(args.work, prepare(args.work))
    started = time.time()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
        },
        "work": str(args.work),
        "items": {},
    }
    for item in wanted:
        title, check = ITEMS[item]
        print(f"item {item}: {title}", file=sys.stderr)
        t0 = time.monotonic()
        outcome = check(bench)
        results["items"][item] = {"fault": title, **outcome, "seconds": round(time.monotonic() - t0, 1)}
        print(f"item {item}: {'held' if outcome['held'] else 'NOT held'}", file=sys.stderr)
    results["machine"]["load_average_after"] = os.getloadavg()
    results["held"] = all(r["held"] for r in results["items"].values())
    results["wall_seconds"] = round(time.time() - started, 1)
    emit(results, args.out)


if __name__ == "__main__":
    main()
