"""The online path: ingest, /recommend during ingest, freshness, and no event lost to kill -9.

    python -m bench.events [--data DIR] [--work DIR] [--preset demo] [--seconds 8]
                           [--connections 4] [--samples 40] [--restarts 20]
                           [--variants process[,thread,commit_thread,off]] [--baseline CHECKOUT]
                           [--repeats N] [--skip ingest,alone,mixed,freshness,kill_9] [--out FILE.json]

Measurements, against ``crm serve`` (one worker, fast lane on) on the models and snapshot that
``bench.serving`` prepares (``--data``, simulated and trained when missing; a second run reuses
them), with an event log of this run's own per service:

- ``recommend_alone``: ``/recommend`` at 200 req/s (open loop, latency from the scheduled send)
  without events, the floor of the next one in the same round;
- ``recommend_during_ingest``: the same while events stream at 1,000 events/s (10 batches of 100
  per second), from the steady state (the service has no churn refresh left to do: ``/info``);
- ``ingest``: ``--connections`` clients posting batches of 100 new events back to back to
  ``POST /events`` for ``--seconds``: acknowledged events per second, batch latency, errors;
- ``recommend_after_burst``: ``recommend_during_ingest`` again right after the ingest burst,
  while the churn scores of the customers it touched are being recomputed;
- ``freshness``: from the 2xx of a purchase of the customer's top item to the first ``/recommend``
  that no longer offers it (``recommendations``), and from the 2xx of a service ticket to the first
  ``/churn_score`` whose answer changed (``churn``), each polled every few milliseconds;
- ``kill_9``: a process appending batches through the service's own accept path (validation and
  log, without HTTP) is killed with SIGKILL at a random moment ``--restarts`` times and restarted
  to resend from its last acknowledgement; then the acknowledged events are counted in the log.

Each round measures every variant in turn (the order alternating between rounds), so that the
figures compared come from the same minutes of a shared machine; the summary gives the medians
over ``--repeats`` rounds, ``comparison`` the first variant's medians over each other's, and each
measurement the CPU cores used by the worker, its commit and churn refresh processes and the load
generator. Variants (:data:`VARIANTS`) set how the service runs its commits and churn refresh;
``--baseline`` adds the service of another checkout (an earlier commit, as it was).

JSON on stdout (and ``--out``), with the issue's bars in ``acceptance`` (the first variant's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from bench import emit
from bench.serving import (
    ROOT,
    RunStats,
    Server,
    _env,
    add_model_arguments,
    closed_loop,
    encode_post,
    free_port,
    open_loop,
)

BATCH = 100
EVENT_MIX = (("view", 0.6), ("add_to_cart", 0.15), ("app_open", 0.15), ("purchase", 0.1))


# ---------------------------------------------------------------------------------------------
# payloads


class EventMaker:
    """Unique, valid events for known customers, timed after the snapshot's as-of."""

    def __init__(self, customers: list[str], items: list[str], as_of: datetime, seed: int = 0) -> None:
        self.customers, self.items, self.as_of = customers, items, as_of
        self.rng = random.Random(seed)
        self.n = 0

    def event(
        self, customer: str | None = None, event_type: str | None = None, item: str | None = None
    ) -> dict:
        self.n += 1
        kinds, weights = zip(*EVENT_MIX, strict=True)
        kind = event_type or self.rng.choices(kinds, weights)[0]
        ts = self.as_of + timedelta(milliseconds=10 * self.n)  # still in the past of any real clock
        event = {
            "customer_id": customer or self.rng.choice(self.customers),
            "ts": f"{ts:%Y-%m-%dT%H:%M:%S.%f}Z",
            "event_type": kind,
            "channel": "app",
            "event_id": f"bench-{self.n}",
        }
        if kind in ("view", "add_to_cart", "purchase"):
            event["item_id"] = item or self.rng.choice(self.items)
        if kind == "purchase":
            event |= {"quantity": 1, "amount": 99.0}
        return event

    def batch(self, n: int = BATCH) -> list[dict]:
        return [self.event() for _ in range(n)]


def event_payloads(port: int, maker: EventMaker, batches: int) -> list[bytes]:
    return [
        encode_post(port, "/events", json.dumps({"events": maker.batch()}).encode()) for _ in range(batches)
    ]


def recommend_payloads(port: int, customers: list[str], n: int = 2000) -> list[bytes]:
    rng = random.Random(1)
    ids = [rng.choice(customers) for _ in range(n)]
    return [encode_post(port, "/recommend", json.dumps({"customer_id": c, "k": 10}).encode()) for c in ids]


def run_loop(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def events_per_second(stats: RunStats) -> dict:
    summary = stats.summary()
    ok = sum(n for s, n in stats.statuses.items() if 200 <= s < 300)
    return summary | {"events_per_s": round(ok * BATCH / stats.seconds, 1), "batch_size": BATCH}


# ---------------------------------------------------------------------------------------------
# measurements against the service


def measure_ingest(port: int, maker: EventMaker, connections: int, seconds: float) -> dict:
    payloads = event_payloads(port, maker, batches=int(400 * seconds) + 200)  # never resent
    stats = run_loop(closed_loop(port, payloads, connections, seconds, 1.0))
    return events_per_second(stats)


def measure_mixed(port: int, maker: EventMaker, customers: list[str], seconds: float) -> dict:
    recs = recommend_payloads(port, customers)
    events = event_payloads(port, maker, batches=int(10 * (seconds + 2)) + 10)

    async def both():
        return await asyncio.gather(
            open_loop(port, recs, 200.0, seconds, 1.0), open_loop(port, events, 10.0, seconds, 1.0)
        )

    rec_stats, event_stats = run_loop(both())
    return {"recommend": rec_stats.summary(), "events": events_per_second(event_stats)}


def _percentiles(values: list[float]) -> dict:
    ms = np.asarray(values) * 1000.0
    if not len(ms):
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = (round(float(np.percentile(ms, q)), 1) for q in (50, 99))
    return {"samples": len(ms), "p50_ms": p50, "p99_ms": p99, "max_ms": round(float(ms.max()), 1)}


def measure_freshness(base: str, maker: EventMaker, customers: list[str], samples: int) -> dict:
    import httpx

    rec_times, churn_times, timeouts = [], [], 0
    with httpx.Client(base_url=base, timeout=10) as http:
        for customer in random.Random(2).sample(customers, samples):
            top = http.post("/recommend", json={"customer_id": customer}).json()["items"][0]["item_id"]
            before = http.post("/churn_score", json={"customer_ids": [customer]}).json()["scores"][0]
            bought = maker.event(customer, "purchase", top)
            ticket = maker.event(customer, "service_ticket")
            r = http.post("/events", json={"events": [bought, ticket]})
            acked = time.perf_counter()
            assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
            rec_seen = churn_seen = None
            while time.perf_counter() - acked < 30 and (rec_seen is None or churn_seen is None):
                if rec_seen is None:  # the time of the first answer that shows the change
                    items = http.post("/recommend", json={"customer_id": customer}).json()["items"]
                    if top not in [i["item_id"] for i in items]:
                        rec_seen = time.perf_counter()
                if churn_seen is None:
                    score = http.post("/churn_score", json={"customer_ids": [customer]}).json()["scores"][0]
                    if score != before:
                        churn_seen = time.perf_counter()
                time.sleep(0.002)
            timeouts += (rec_seen is None) + (churn_seen is None)
            if rec_seen is not None:
                rec_times.append(rec_seen - acked)
            if churn_seen is not None:
                churn_times.append(churn_seen - acked)
    return {"recommendations": _percentiles(rec_times), "churn": _percentiles(churn_times),
            "not_seen_within_30_s": timeouts}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# kill -9 of a process appending through the service's accept path

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta
    from serving.events import EventFeed, EventSettings
    from serving.schemas import PostedEvent
    log, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    feed = EventFeed(EventSettings(event_log=log, churn_refresh_seconds=0), lambda: None)
    t0 = datetime(2025, 1, 1)
    for b in range(start, start + count if count else 10**9):
        ts = f"{t0 + timedelta(seconds=b):%Y-%m-%dT%H:%M:%S}Z"
        events = [PostedEvent(customer_id=f"K{b}-{i}", ts=ts, event_type="app_open", channel="app",
                              event_id=f"k9-{b}-{i}") for i in range(100)]
        status, answer = feed.accept(events)
        if status == 200:
            print(f"ack {b} {answer['accepted']}", flush=True)
    """
)


def measure_kill_9(work: Path, restarts: int) -> dict:
    from features.eventlog import EventLog

    log_path = work / "kill9.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{log_path}{suffix}").unlink(missing_ok=True)
    env = _env()
    rng = random.Random(3)
    acked: dict[int, int] = {}  # batch -> events acknowledged
    next_batch = 0
    for run in range(restarts + 1):
        last = run == restarts  # the last run writes a few batches and exits by itself
        argv = [sys.executable, "-c", WRITER, str(log_path), str(next_batch), "5" if last else "0"]
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        kill_at = None
        for line in proc.stdout:
            _, batch, n = line.split()
            acked[int(batch)] = int(n)
            next_batch = int(batch) + 1  # a restarted writer resends from the last acknowledgement
            kill_at = kill_at or time.monotonic() + rng.uniform(0.2, 1.0)
            if not last and time.monotonic() > kill_at:
                os.kill(proc.pid, signal.SIGKILL)  # at whatever it is doing: appending, fsyncing, ...
                break
        proc.wait()
    with EventLog(log_path) as log:
        events, _ = log.read_since(0, limit=10**9)
    logged = set(events["event_id"])
    acknowledged = {f"k9-{b}-{i}" for b in acked for i in range(acked[b])}
    return {
        "restarts": restarts,
        "acknowledged": len(acknowledged),
        "in_log": len(logged),
        "lost": len(acknowledged - logged),
        "logged_unacknowledged": len(logged - acknowledged),
    }


# ---------------------------------------------------------------------------------------------
# the service's processes: memory and CPU

# how the churn refresh runs in each variant the run can compare (CRM_* overrides)
VARIANTS = {
    # the default: the commits and the churn refresh each in a child process of the worker
    "process": {"CRM_CHURN_REFRESH_PROCESS": "1", "CRM_EVENT_COMMIT_PROCESS": "1"},
    "commit_thread": {"CRM_CHURN_REFRESH_PROCESS": "1", "CRM_EVENT_COMMIT_PROCESS": "0"},
    # both on threads of the worker, as before
    "thread": {"CRM_CHURN_REFRESH_PROCESS": "0", "CRM_EVENT_COMMIT_PROCESS": "0"},
    "off": {"CRM_CHURN_REFRESH_SECONDS": "0"},  # no churn refresh at all
}


def service_processes(pid: int) -> dict[str, list]:
    """The ``bentoml serve`` supervisor's processes by role: ``worker`` (its direct children),
    ``commit`` and ``refresh`` (the workers' event commit and churn refresh processes), ``other``."""
    import psutil

    roles: dict[str, list] = {"supervisor": [], "worker": [], "commit": [], "refresh": [], "other": []}
    try:
        root = psutil.Process(pid)
        roles["supervisor"].append(root)
        direct = {c.pid for c in root.children()}
        for child in root.children(recursive=True):
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            role = ("refresh" if "serving.live" in cmd else "commit" if "serving.events" in cmd
                    else "worker" if child.pid in direct else "other")  # fmt: skip
            roles[role].append(child)
    except psutil.Error:
        pass
    return roles


def rss_by_role(pid: int) -> dict[str, float]:
    out = {}
    for role, procs in service_processes(pid).items():
        total = 0.0
        for p in procs:
            try:
                total += p.memory_info().rss
            except Exception:
                pass
        out[role] = round(total / 2**20, 1)
    return out


def cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds so far per role, and this process's (the load generator's)."""
    import psutil

    out = {}
    for role, procs in service_processes(pid).items():
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[role] = total
    t = psutil.Process().cpu_times()
    out["load_generator"] = t.user + t.system
    return out


def cpu_used(before: dict, after: dict, seconds: float) -> dict:
    """CPU cores used per role over a measurement (CPU seconds / wall seconds)."""
    return {k: round((after.get(k, 0.0) - before.get(k, 0.0)) / seconds, 3) for k in after}


def rss_mb(pid: int) -> float | None:
    try:
        import psutil

        proc = psutil.Process(pid)
        return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# the run


def drain(port: int, limit: float = 120.0) -> float | None:
    """Wait until the service has no churn refresh pending (bounded); the seconds it took, None
    when it still had some at the limit."""
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            events = httpx.get(f"http://127.0.0.1:{port}/info", timeout=10).json()["events"]
            if not events.get("churn_refresh_pending"):
                return round(time.perf_counter() - t0, 1)
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    return None


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument(
        "--variants", default="process",
        help=f"how the churn refresh runs, compared in this run: a comma list of {', '.join(VARIANTS)}"
        " (each its own service and event log; the first is the one the acceptance block reads)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path,
        help="another checkout of the repository (say a `git worktree` of an earlier commit): its"
        " service, with its own defaults, is measured in this run as the variant `baseline`",
    )  # fmt: skip
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of ingest and mixed, variants interleaved"
    )
    parser.add_argument(
        "--skip", default="", help="measurements to leave out: ingest,alone,mixed,freshness,kill_9"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v] + (["baseline"] if args.baseline else [])
    unknown = sorted(set(variants) - set(VARIANTS) - {"baseline"})
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}: expected {', '.join(VARIANTS)}")
    skip = set(args.skip.split(",")) - {""}

    import pandas as pd

    from bench.serving import prepare_models

    store_env = prepare_models(args.data, args.work, args.preset)
    info = store_env.pop("info")
    snapshot = Path(store_env["CRM_ONLINE_SNAPSHOT"])
    customers = pd.read_parquet(snapshot / "snapshot.parquet", columns=["customer_id"])["customer_id"]
    customers = customers.astype(str).tolist()
    items = pd.read_parquet(snapshot / "items.parquet")
    active = items.loc[items["active"].fillna(False).astype(bool), "item_id"].astype(str).tolist()
    as_of = datetime.fromisoformat(json.loads((snapshot / "manifest.json").read_text())["as_of"])
    events_dir = args.work / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    info |= {"customers": len(customers), "items": len(items), "event_log": str(events_dir)}

    from crm.commands.serve import serve_command

    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_before": os.getloadavg()},
        "models": info,
        "seconds_per_measurement": args.seconds,
        "variants": {},
    }  # fmt: skip
    started = time.time()
    with contextlib.ExitStack() as stack:
        servers = {}
        for n, name in enumerate(variants):
            log_path = events_dir / f"eventlog-{name}.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{log_path}{suffix}").unlink(missing_ok=True)
            port = free_port()
            cmd, env = serve_command(port)
            env = _env({**env, **store_env, "CRM_EVENT_LOG": str(log_path), "CRM_DATA_DIR": str(args.data),
                        "CRM_OPEN_OPERATIONS": "1", **VARIANTS.get(name, {})})  # fmt: skip
            if name == "baseline":  # the other checkout's service and code
                tree = str(args.baseline.resolve())
                cmd[cmd.index("--working-dir") + 1] = tree
                cmd = ["env", "-C", tree, *cmd]  # `python -m` puts the working directory first
                env["PYTHONPATH"] = tree
            env.pop("CRM_API_TOKEN", None)
            ready_from = time.perf_counter()
            server = stack.enter_context(Server(f"crm_events_{name}", cmd, env, port, ("GET", "/readyz")))
            servers[name] = server
            # event times of a variant of their own: every service gets new events
            maker = EventMaker(customers, active, as_of + timedelta(hours=n), seed=n)
            results["variants"][name] = {
                "env": VARIANTS.get(name, {"tree": str(args.baseline)}),
                "time_to_ready_s": round(time.perf_counter() - ready_from, 1),
                "maker": maker,
                **{key: [] for key in ("ingest", "recommend_alone", "recommend_during_ingest",
                                       "recommend_after_burst", "refresh_drained_s")},
            }  # fmt: skip
        time.sleep(3.0)  # settle after the starts
        for r in range(args.repeats):
            for name in variants if r % 2 == 0 else variants[::-1]:  # interleaved, alternating order
                server, out = servers[name], results["variants"][name]

                def mixed(key: str, server=server, out=out) -> None:
                    before = cpu_seconds(server.proc.pid)
                    t0 = time.perf_counter()
                    run = measure_mixed(server.port, out["maker"], customers, args.seconds)
                    run["cpu_cores"] = cpu_used(
                        before, cpu_seconds(server.proc.pid), time.perf_counter() - t0
                    )
                    out[key].append(run)

                # the steady state first: nothing left to refresh from an earlier round
                out["refresh_drained_s"].append(drain(server.port))
                if "alone" not in skip:  # the same /recommend load without events: the floor
                    print(f"[{name}] recommend without ingest", file=sys.stderr)
                    recs = recommend_payloads(server.port, customers)
                    out["recommend_alone"].append(
                        run_loop(open_loop(server.port, recs, 200.0, args.seconds, 1.0)).summary()
                    )
                if "mixed" not in skip:
                    print(f"[{name}] recommend during ingest", file=sys.stderr)
                    drain(server.port)
                    mixed("recommend_during_ingest")
                if "ingest" not in skip:
                    print(f"[{name}] ingest", file=sys.stderr)
                    before = cpu_seconds(server.proc.pid)
                    t0 = time.perf_counter()
                    run = measure_ingest(server.port, out["maker"], args.connections, args.seconds)
                    run["cpu_cores"] = cpu_used(
                        before, cpu_seconds(server.proc.pid), time.perf_counter() - t0
                    )
                    out["ingest"].append(run)
                    if "mixed" not in skip:  # right after the burst: its churn refresh still running
                        print(
                            f"[{name}] recommend during ingest, right after the ingest burst", file=sys.stderr
                        )
                        mixed("recommend_after_burst")
        for name in variants:
            server, out = servers[name], results["variants"][name]
            if "freshness" not in skip and name != "off":  # "off" never changes a churn score
                print(f"[{name}] freshness", file=sys.stderr)
                out["refresh_drained_s"].append(drain(server.port))  # from the steady state
                base = f"http://127.0.0.1:{server.port}"
                out["freshness"] = measure_freshness(base, out["maker"], customers, args.samples)
            out["rss_mb"] = rss_by_role(server.proc.pid)
            out["worker_rss_mb"] = out["rss_mb"].get("worker")
            del out["maker"]
            out["summary"] = summarise(out)
    if "kill_9" not in skip:
        print("kill -9 restarts", file=sys.stderr)
        results["kill_9"] = measure_kill_9(events_dir, args.restarts)
    results["machine"]["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.time() - started, 1)
    results["comparison"] = compare(results["variants"])
    results["acceptance"] = acceptance(results["variants"][variants[0]], results.get("kill_9"))
    results["acceptance"]["variant"] = variants[0]
    emit(results, args.out)


def summarise(v: dict) -> dict:
    """Medians over the rounds of one variant."""
    rec = [r["recommend"] for r in v["recommend_during_ingest"]]
    alone = v["recommend_alone"]
    fresh = v.get("freshness", {})
    return {
        "rounds": len(rec) or len(v["ingest"]),
        "recommend_alone_p50_ms": _median([r["p50_ms"] for r in alone]),
        "recommend_alone_p99_ms": _median([r["p99_ms"] for r in alone]),
        "ingest_events_per_s": _median([r["events_per_s"] for r in v["ingest"]]),
        "ingest_errors": sum(r["errors"] + r["non_2xx"] for r in v["ingest"]),
        "recommend_p50_ms": _median([r["p50_ms"] for r in rec]),
        "recommend_p99_ms": _median([r["p99_ms"] for r in rec]),
        "recommend_p99_ms_rounds": [r["p99_ms"] for r in rec],
        "recommend_errors": sum(r["errors"] + r["non_2xx"] for r in rec),
        "recommend_after_burst_p99_ms": _median(
            [r["recommend"]["p99_ms"] for r in v["recommend_after_burst"]]
        ),
        "recommend_after_burst_p99_ms_rounds": [r["recommend"]["p99_ms"] for r in v["recommend_after_burst"]],
        "freshness_recommendations_p99_ms": fresh.get("recommendations", {}).get("p99_ms"),
        "freshness_churn_p99_ms": fresh.get("churn", {}).get("p99_ms"),
        "freshness_not_seen": fresh.get("not_seen_within_30_s"),
    }


def compare(variants: dict) -> dict:
    """Each variant's medians against the first's (ratios: variant / first)."""
    names = list(variants)
    first = variants[names[0]]["summary"]
    out = {}
    for name in names[1:]:
        s = variants[name]["summary"]
        out[f"{names[0]}_vs_{name}"] = {
            key: round(first[key] / s[key], 3) if first.get(key) and s.get(key) else None
            for key in ("ingest_events_per_s", "recommend_alone_p99_ms", "recommend_p50_ms",
                        "recommend_p99_ms", "recommend_after_burst_p99_ms", "freshness_churn_p99_ms")
        }  # fmt: skip
    return out


def acceptance(v: dict, kill_9: dict | None) -> dict:
    """The issue's bars, from this run (medians over the rounds)."""
    s = v["summary"]
    rec_errors = s["recommend_errors"]
    out = {
        "ingest_events_per_s": s["ingest_events_per_s"],
        "ingest_bar_met": s["ingest_events_per_s"] is not None and s["ingest_events_per_s"] >= 5000
        and s["ingest_errors"] == 0,
        "recommend_p99_ms_during_ingest": s["recommend_p99_ms"],
        "recommend_errors_during_ingest": rec_errors,
        "recommend_bar_met": s["recommend_p99_ms"] is not None and s["recommend_p99_ms"] <= 15
        and rec_errors == 0,
        "freshness_recommendations_p99_ms": s["freshness_recommendations_p99_ms"],
        "freshness_recommendations_bar_met": (s["freshness_recommendations_p99_ms"] or 1e9) <= 1000,
        "freshness_churn_p99_ms": s["freshness_churn_p99_ms"],
        "freshness_churn_bar_met": (s["freshness_churn_p99_ms"] or 1e9) <= 10000,
    }  # fmt: skip
    if kill_9 is not None:
        out["kill_9_lost"] = kill_9["lost"]
        out["kill_9_bar_met"] = kill_9["lost"] == 0 and kill_9["in_log"] == kill_9["acknowledged"]
    return out


if __name__ == "__main__":
    main()
