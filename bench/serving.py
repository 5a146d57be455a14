"""Serving latency and throughput on loopback, against a no-op floor measured in the same run.

    python -m bench.serving [--data DIR] [--work DIR] [--rates 50,100,200,400] [--seconds 8]
                            [--out FILE.json]

Servers, each started as its own process and measured in turn:

- ``floor``: plain uvicorn + starlette, one no-op JSON route (the framework-free floor);
- ``bento_noop_default``: a no-op BentoML 1.4 endpoint with BentoML's default configuration;
- ``bento_noop_tuned``: the same endpoint with the service's configuration (async endpoint,
  metrics/access log/tracing off, an IODescriptor output spec);
- ``crm``: the CRM service (``crm serve``) on demo-preset models, fast lane on (default);
- ``crm_no_fast_lane``: the same with ``CRM_FAST_LANE=0`` (every request through BentoML).

For each: a closed loop (1 and 16 connections back to back: the maximum throughput) and an
open loop at fixed request rates (sends scheduled in advance; latency counted from the scheduled
time, so a stalled server cannot hide its queue). Endpoints: ``/recommend`` and ``/churn_score``
(one customer per request; 5% of the ids unknown). JSON on stdout (and ``--out``).

The load generator is raw asyncio sockets on uvloop (keep-alive, pre-encoded requests); the floor
figures show it is not the bottleneck. Models: with ``--data`` pointing at a demo-preset data
folder (default: ``out/bench/data``, simulated when missing) the script fits a churn model (no
search) and a one-epoch two-tower, registers and promotes both in a private store under
``--work``, and builds the online snapshot; a second run reuses them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import emit

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# the servers under test that live in this file (imported by uvicorn / bentoml serve)


def _floor_app():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def noop(request):
        await request.body()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/noop", noop, methods=["POST"])])


def __getattr__(name: str):
    """Lazily build the servers (nothing is built when the module is imported)."""
    if name == "floor_app":
        return _floor_app()
    if name in ("NoopDefault", "NoopTuned"):
        return _bento_noops()[name]
    raise AttributeError(name)


def _bento_noops() -> dict:
    import bentoml
    from pydantic import BaseModel

    class Ok(BaseModel):
        ok: bool

    @bentoml.service(name="noop_default")
    class NoopDefault:
        @bentoml.api
        def noop(self, x: int = 0) -> dict:
            return {"ok": True}

    @bentoml.service(
        name="noop_tuned",
        workers=1,
        metrics={"enabled": False},
        logging={"access": {"enabled": False}},
        tracing={"sample_rate": 0.0, "excluded_urls": [".*"]},
    )
    class NoopTuned:
        @bentoml.api(output_spec=Ok)
        async def noop(self, x: int = 0) -> Ok:
            return Ok(ok=True)

    return {"NoopDefault": NoopDefault, "NoopTuned": NoopTuned}


# ---------------------------------------------------------------------------------------------
# load generator


def encode_post(port: int, path: str, body: bytes) -> bytes:
    """One keep-alive POST request as bytes."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class RunStats:
    """Latencies (seconds) and counts of one measurement."""

    mode: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    target_rate: float | None = None
    connections: int = 0

    def summary(self) -> dict:
        lat = np.asarray(self.latencies) * 1000.0
        done = len(lat)

        def pct(q: float) -> float | None:
            return round(float(np.percentile(lat, q)), 3) if done else None

        return {
            "mode": self.mode,
            "target_rate": self.target_rate,
            "connections": self.connections,
            "requests": done + self.errors,
            "errors": self.errors,
            "non_2xx": sum(n for s, n in self.statuses.items() if not 200 <= s < 300),
            "throughput_rps": round(done / self.seconds, 1),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(float(lat.max()), 3) if done else None,
        }


class Connection:
    """One keep-alive connection: write a request, read one response (Content-Length or chunked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.perf_counter()  # when its last answer arrived

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, payload: bytes) -> int:
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, chunked = int(head[9:12]), 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


FAILURES = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
# A pooled connection idle this long is replaced, not reused: the server closes an idle keep-alive
# connection after its timeout (uvicorn's default is 5 s), and a request sent on it as the server
# closes it fails; clients' pools expire theirs first for that reason (httpx: keepalive_expiry).
KEEPALIVE_EXPIRY_SECONDS = 4.0


async def open_loop(port: int, payloads: list[bytes], rate: float, seconds: float, warmup: float) -> RunStats:
    """Requests scheduled at ``rate``/s; each is sent at its time on an idle (or new) connection."""
    idle = [await Connection.open(port) for _ in range(4)]
    stats = RunStats("open", seconds, target_rate=rate)
    total, n_warm, opened = int((seconds + warmup) * rate), int(warmup * rate), len(idle)
    pending: set[asyncio.Task] = set()

    async def one(i: int, scheduled: float) -> None:
        nonlocal opened
        conn = idle.pop() if idle else None
        if conn is not None and time.perf_counter() - conn.idle_since > KEEPALIVE_EXPIRY_SECONDS:
            conn.close()  # the server may have closed it: a new one, as a client's pool does
            conn = None
        try:
            if conn is None:
                conn = await Connection.open(port)
                opened += 1
            status = await conn.request(payloads[i % len(payloads)])
            if i >= n_warm:
                stats.latencies.append(time.perf_counter() - scheduled)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
            conn.idle_since = time.perf_counter()
            idle.append(conn)
        except FAILURES:
            stats.errors += i >= n_warm
            if conn is not None:
                conn.close()

    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=60)
    for conn in idle:
        conn.close()
    stats.connections = opened
    return stats


async def closed_loop(
    port: int, payloads: list[bytes], connections: int, seconds: float, warmup: float
) -> RunStats:
    """``connections`` clients, each sending its next request when the last answer arrived."""
    stats = RunStats("closed", seconds, connections=connections)
    conns = [await Connection.open(port) for _ in range(connections)]
    t0 = time.perf_counter()
    measure_from, stop_at = t0 + warmup, t0 + warmup + seconds

    async def client(c: int, conn: Connection) -> None:
        i = c
        while (sent := time.perf_counter()) < stop_at:
            try:
                status = await conn.request(payloads[i % len(payloads)])
            except FAILURES:
                stats.errors += sent >= measure_from
                conn.close()
                conn = await Connection.open(port)
                continue
            if sent >= measure_from:
                stats.latencies.append(time.perf_counter() - sent)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
            i += connections
        conn.close()

    await asyncio.gather(*(client(c, conn) for c, conn in enumerate(conns)))
    return stats


def measure(coro) -> dict:
    try:
        import uvloop

        return uvloop.run(coro).summary()
    except ImportError:  # pragma: no cover
        return asyncio.run(coro).summary()


# ---------------------------------------------------------------------------------------------
# servers as processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process group on a free port; ready when ``probe`` answers 200."""

    def __init__(self, name: str, cmd: list[str], env: dict, port: int, probe: tuple[str, str]) -> None:
        self.name, self.cmd, self.env, self.port, self.probe = name, cmd, env, port, probe
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{self.name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        method, path = self.probe
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                r = httpx.request(method, f"http://127.0.0.1:{self.port}{path}", json={}, timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after 300 s; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _env(extra: dict | None = None) -> dict:
    from serving.config import pin_numeric_threads

    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}
    pin_numeric_threads(env)
    return env


def floor_server() -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.serving:_floor_app", "--port", str(port),
           "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return Server("floor", cmd, _env(), port, ("POST", "/noop"))


def bento_noop_server(name: str) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", f"bench.serving:{name}", "--port", str(port),
           "--host", "127.0.0.1", "--working-dir", str(ROOT)]  # fmt: skip
    return Server(name, cmd, _env(), port, ("POST", "/noop"))


def crm_server(name: str, store_env: dict, fast_lane: bool) -> Server:
    from crm.commands.serve import serve_command

    port = free_port()
    extra = {**store_env, "CRM_FAST_LANE": "1" if fast_lane else "0"}
    cmd, env = serve_command(port)
    env = _env({**env, **extra})
    env.pop("CRM_API_TOKEN", None)  # no token
    return Server(name, cmd, env, port, ("GET", "/readyz"))


# ---------------------------------------------------------------------------------------------
# demo-preset models


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--work`` and ``--preset``: what :func:`prepare_models` reads (the serving
    benches share one prepared set of models, reused between runs)."""
    parser.add_argument("--data", type=Path, default=ROOT / "out/bench/data",
                        help="the simulated data folder (simulated when missing)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=ROOT / "out/bench/serving",
                        help="the models' store and the online snapshot (trained when missing)")  # fmt: skip
    parser.add_argument("--preset", default="demo", help="the simulator's preset for a missing --data")


def prepare_models(data: Path, work: Path, preset: str) -> dict:
    """Champion churn and recommender models and the online snapshot in a private store."""
    from features.online import build_online_snapshot
    from features.store import Store
    from serving.registry import resolve_model_uri

    store = Store.at(work / "store")
    env = {**store.env(), "CRM_ONLINE_SNAPSHOT": str(work / "online"), "GIT_PYTHON_REFRESH": "quiet"}
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # MLflow logs models in this process too
    info = {"data": str(data), "preset": preset, "store": str(store.dir)}
    if not (data / "events").exists() and not (data / "events.parquet").exists():
        from features.synth import SynthConfig
        from features.synth import run as synth

        print(f"simulating the {preset} preset into {data}", file=sys.stderr)
        synth(SynthConfig(preset=preset, seed=42, out=data))
    if not (work / "online" / "manifest.json").exists():
        print("building the online snapshot", file=sys.stderr)
        build_online_snapshot(data, work / "online")
    try:
        resolve_model_uri("models:/churn@champion", store.tracking)
    except Exception:
        print("fitting the churn model", file=sys.stderr)
        from training.churn import ChurnParams, train_fixed

        train_fixed(data, store, "bench-serving", ChurnParams(max_rounds=200, early_stopping=20))
    try:
        resolve_model_uri("models:/recommender@champion", store.tracking)
    except Exception:
        print("training the two-tower recommender (1 epoch)", file=sys.stderr)
        from training.recommender import RecommenderTrainConfig
        from training.recommender import run as train_recommender
        from training.registry import promote

        cfg = RecommenderTrainConfig(data=data, epochs=1, baselines=False, register_model=True, store=store)
        train_recommender(cfg)
        promote("recommender", force=True, store=store)
    return env | {"info": info}


# ---------------------------------------------------------------------------------------------
# the run


def payloads_for(port: int, snapshot: Path | None) -> dict[str, list[bytes]]:
    if snapshot is None:
        return {"/noop": [encode_post(port, "/noop", b'{"x": 1}')]}
    import pandas as pd

    rng = np.random.default_rng(0)
    known = pd.read_parquet(snapshot / "snapshot.parquet", columns=["customer_id"])["customer_id"].astype(str)
    ids = rng.choice(known.to_numpy(), size=2000).tolist()
    ids = [f"unknown-{i}" if rng.random() < 0.05 else c for i, c in enumerate(ids)]
    return {
        "/recommend": [
            encode_post(port, "/recommend", json.dumps({"customer_id": c, "k": 10}).encode()) for c in ids
        ],
        "/churn_score": [
            encode_post(port, "/churn_score", json.dumps({"customer_ids": [c]}).encode()) for c in ids
        ],
    }


def run_server(server: Server, snapshot: Path | None, args, rates: list[float]) -> dict:
    out = {}
    with server:
        for path, payloads in payloads_for(server.port, snapshot).items():
            res = {"closed": [], "open": []}
            for c in (1, 16):
                res["closed"].append(measure(closed_loop(server.port, payloads, c, args.seconds, 1.0)))
            for rate in rates:
                res["open"].append(measure(open_loop(server.port, payloads, rate, args.seconds, 1.0)))
            res["max_throughput_rps"] = max(r["throughput_rps"] for r in res["closed"])
            out[path] = res
            print(f"{server.name} {path}: max {res['max_throughput_rps']} req/s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--rates", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--servers", default="floor,bento_noop_default,bento_noop_tuned,crm,crm_no_fast_lane")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    wanted = args.servers.split(",")

    store_env = prepare_models(args.data, args.work, args.preset)
    info = store_env.pop("info")
    snapshot = Path(store_env["CRM_ONLINE_SNAPSHOT"])
    import pandas as pd

    info["customers"] = len(pd.read_parquet(snapshot / "snapshot.parquet", columns=["customer_id"]))
    info["items"] = len(pd.read_parquet(snapshot / "items.parquet", columns=["item_id"]))
    servers = {
        "floor": (floor_server, None),
        "bento_noop_default": (lambda: bento_noop_server("NoopDefault"), None),
        "bento_noop_tuned": (lambda: bento_noop_server("NoopTuned"), None),
        "crm": (lambda: crm_server("crm", store_env, True), snapshot),
        "crm_no_fast_lane": (lambda: crm_server("crm_no_fast_lane", store_env, False), snapshot),
    }
    started = time.time()
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_before": os.getloadavg()},
        "models": info,
        "seconds_per_measurement": args.seconds,
        "servers": {},
    }  # fmt: skip
    for name in wanted:
        make, snap = servers[name]
        results["servers"][name] = run_server(make(), snap, args, rates)
    results["machine"]["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.time() - started, 1)
    results["acceptance"] = acceptance(results["servers"])
    emit(results, args.out)


def acceptance(servers: dict) -> dict:
    """The issue's bars: /recommend p99 <= 15 ms at 200 req/s with no errors, and max throughput
    at least half the floor's, both from this run."""
    out = {}
    floor = servers.get("floor", {}).get("/noop", {}).get("max_throughput_rps")
    crm = servers.get("crm", {}).get("/recommend")
    if crm:
        at200 = next((r for r in crm["open"] if r["target_rate"] == 200), None)
        if at200:
            out["recommend_p99_ms_at_200"] = at200["p99_ms"]
            out["recommend_errors_at_200"] = at200["errors"] + at200["non_2xx"]
            out["p99_bar_met"] = at200["p99_ms"] <= 15 and out["recommend_errors_at_200"] == 0
        if floor:
            out["recommend_max_rps"] = crm["max_throughput_rps"]
            out["floor_max_rps"] = floor
            out["throughput_ratio"] = round(crm["max_throughput_rps"] / floor, 3)
            out["throughput_bar_met"] = out["throughput_ratio"] >= 0.5
    return out


if __name__ == "__main__":
    main()
