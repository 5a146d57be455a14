"""The service with 1M customers in the online state: time to ready and the worker's memory.

    python -m bench.online_scale [--data DIR] [--work DIR] [--preset demo] [--customers 1000000]
                                 [--variants default,no_precompute] [--profile] [--no-serve]
                                 [--out FILE.json]

The models and the base online snapshot are the ones ``bench.serving`` prepares (``--data``,
simulated and trained when missing; a second run reuses them). The large online state is
synthetic, and cheap to build (seconds): the base snapshot's rows (``snapshot``, ``owned``,
``recent``) repeated with new customer ids (``<id>~r<k>``, the first copy keeping the base ids) up
to ``--customers``, the catalogue, popularity and
manifest copied, in the folder format :func:`features.online.load_online_snapshot` reads. The
copies are unknown to the recommender (they get its unknown-customer bucket and their own recent
items), which costs what any snapshot customer costs at start-up.

Measurements:

- ``serve``: ``crm serve`` (one worker) on the large state with an event log of its own; the time
  from the start of the process to ``/readyz`` 200 (every endpoint answers), then to ``/info``'s
  ``lists_precomputed`` (``time_to_lists_s``: the default-filter lists the service precomputes in
  the background once it serves), and the worker's RSS sampled every 0.25 s until then
  (``peak_rss_mb``: the kernel's high-water mark, ``VmHWM``), then ``steady_rss_mb``
  after a few seconds of requests (and their latencies, one client back to back); once per
  ``--variants`` configuration (``no_precompute``: ``CRM_PRECOMPUTE_RECOMMENDATIONS=0``), one
  after the other in the same run;
- ``profile`` (``--profile``): the stages of :func:`serving.state.load_state` run one by one in
  this process, each with its wall time and the process's RSS after it (what a worker spends its
  start-up on), plus a few cheaper alternatives measured on the same data in the same run.

JSON on stdout (and ``--out``), with the issue's bars (ready within 120 s, worker RSS at most
6 GB) in ``acceptance``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import emit
from bench.serving import ROOT, _env, add_model_arguments, free_port, prepare_models

READY_BAR_S = 120.0
RSS_BAR_MB = 6 * 1024.0
LARGE_MARK = "~r"  # between a base customer id and its copy number


# ---------------------------------------------------------------------------------------------
# the synthetic large state


def build_large_snapshot(base: Path, out: Path, customers: int) -> dict:
    """``base``'s rows repeated with new customer ids up to ``customers`` rows, into ``out``
    (reused when it already holds that many)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    marker = out / "bench_large.json"
    if marker.is_file() and json.loads(marker.read_text()).get("customers") == customers:
        return json.loads(marker.read_text())
    started = time.perf_counter()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    snapshot = pq.read_table(base / "snapshot.parquet")
    n_base = snapshot.num_rows
    copies = -(-customers // n_base)
    for name in ("snapshot.parquet", "owned.parquet", "recent.parquet"):
        table = snapshot if name == "snapshot.parquet" else pq.read_table(base / name)
        ids = table.column("customer_id").cast(pa.string())
        position = table.schema.get_field_index("customer_id")
        with pq.ParquetWriter(tmp / name, table.schema) as writer:
            for k in range(copies):
                block = table
                if name == "snapshot.parquet" and (k + 1) * n_base > customers:
                    block = table.slice(0, customers - k * n_base)
                    ids_k = ids.slice(0, block.num_rows)
                else:
                    ids_k = ids
                if name != "snapshot.parquet" and (k + 1) * n_base > customers:  # only the kept ones
                    keep = set(snapshot.column("customer_id").slice(0, customers - k * n_base).to_pylist())
                    mask = pc.is_in(ids, value_set=pa.array(sorted(keep), pa.string()))
                    block, ids_k = table.filter(mask), ids.filter(mask)
                # copy 0 keeps the base ids (the customers the recommender was trained on)
                new_ids = (
                    ids_k if k == 0 else pc.binary_join_element_wise(ids_k, pa.scalar(f"{LARGE_MARK}{k}"), "")
                )
                new_ids = new_ids.cast(table.schema.field(position).type)
                writer.write_table(block.set_column(position, table.schema.field(position), new_ids))
    for name in ("items.parquet", "popularity.parquet", "manifest.json"):
        shutil.copy2(base / name, tmp / name)
    info = {
        "customers": customers,
        "base_customers": n_base,
        "copies": copies,
        "owned_rows": pq.ParquetFile(tmp / "owned.parquet").metadata.num_rows,
        "recent_rows": pq.ParquetFile(tmp / "recent.parquet").metadata.num_rows,
        "files_mb": round(sum(p.stat().st_size for p in tmp.iterdir()) / 2**20, 1),
        "build_s": round(time.perf_counter() - started, 1),
    }
    (tmp / "bench_large.json").write_text(json.dumps(info))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return info


# ---------------------------------------------------------------------------------------------
# process memory


def _status_kb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def worker_pids(root_pid: int) -> list[int]:
    """The service worker processes under the ``bentoml serve`` supervisor (the children that
    import the service; the supervisor's other children are helpers)."""
    import psutil

    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return []
    workers = []
    for child in children:
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "worker" in cmd or "serving.service" in cmd or "_bento_api_server" in cmd or "api_server" in cmd:
            workers.append(child.pid)
    return workers or [c.pid for c in children]


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def hwm_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


# ---------------------------------------------------------------------------------------------
# the service on the large state


SERVE_VARIANTS = {
    "default": {},  # as the service starts by default
    # the default-filter lists not precomputed at start (each /recommend computes its list)
    "no_precompute": {"CRM_PRECOMPUTE_RECOMMENDATIONS": "0"},
}


def measure_serve(
    store_env: dict, snapshot: Path, data: Path, work: Path, steady_seconds: float, extra: dict | None = None
) -> dict:
    import httpx
    import numpy as np
    import pandas as pd

    from crm.commands.serve import serve_command

    log_path = work / "scale-eventlog.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{log_path}{suffix}").unlink(missing_ok=True)
    port = free_port()
    cmd, env = serve_command(port)
    env = _env({**env, **store_env, "CRM_ONLINE_SNAPSHOT": str(snapshot), "CRM_EVENT_LOG": str(log_path),
                "CRM_DATA_DIR": str(data), "CRM_RELOAD_POLL_SECONDS": "0", "CRM_OPEN_OPERATIONS": "1",
                **(extra or {})})  # fmt: skip
    env.pop("CRM_API_TOKEN", None)
    server_log = work / "scale-serve.log"
    base = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, float]] = []  # (seconds since start, worker RSS MB)
    out: dict = {"log": str(server_log)}
    started = time.perf_counter()
    with open(server_log, "wb") as logf:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            ready, workers = None, []
            while time.perf_counter() - started < 600:
                if proc.poll() is not None:
                    raise RuntimeError(f"crm serve exited with {proc.returncode}; see {server_log}")
                workers = worker_pids(proc.pid) or workers
                total = sum(rss_mb(p) or 0.0 for p in workers)
                samples.append((round(time.perf_counter() - started, 2), round(total, 1)))
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        ready = time.perf_counter() - started
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            out["time_to_ready_s"] = None if ready is None else round(ready, 1)
            out["worker_pids"] = workers
            out["ready_rss_mb"] = round(sum(rss_mb(p) or 0.0 for p in workers), 1)
            # the default-filter lists follow in the background: until /info says they are in
            lists = None
            while ready is not None and (extra or {}).get("CRM_PRECOMPUTE_RECOMMENDATIONS") != "0":
                samples.append((round(time.perf_counter() - started, 2),
                                round(sum(rss_mb(p) or 0.0 for p in workers), 1)))  # fmt: skip
                try:
                    if httpx.get(f"{base}/info", timeout=5).json().get("lists_precomputed"):
                        lists = time.perf_counter() - started
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.perf_counter() - started > 900 or proc.poll() is not None:
                    break
                time.sleep(0.25)
            out["time_to_lists_s"] = None if lists is None else round(lists, 1)
            out["peak_rss_mb_sampled"] = max((s[1] for s in samples), default=None)
            # a few seconds of requests (known and copied customers), then the steady figure
            ids = pd.read_parquet(snapshot / "snapshot.parquet", columns=["customer_id"])["customer_id"]
            picks = ids.sample(200, random_state=0).astype(str).tolist()
            errors, n, t_end, rec_ms, churn_ms = 0, 0, time.perf_counter() + steady_seconds, [], []
            with httpx.Client(base_url=base, timeout=10) as http:
                while time.perf_counter() < t_end:
                    c = picks[n % len(picks)]
                    t0 = time.perf_counter()
                    r1 = http.post("/recommend", json={"customer_id": c, "k": 10})
                    t1 = time.perf_counter()
                    r2 = http.post("/churn_score", json={"customer_ids": [c]})
                    rec_ms.append((t1 - t0) * 1000)
                    churn_ms.append((time.perf_counter() - t1) * 1000)
                    errors += (r1.status_code != 200) + (r2.status_code != 200)
                    n += 1
            out["steady_requests"], out["steady_errors"] = 2 * n, errors
            out["steady_latency_ms"] = {  # one client, back to back (httpx: a floor of a millisecond or so)
                name: {q: round(float(np.percentile(v, int(q[1:]))), 2) for q in ("p50", "p99")}
                for name, v in (("recommend", rec_ms), ("churn_score", churn_ms)) if v
            }  # fmt: skip
            out["steady_rss_mb"] = round(sum(rss_mb(p) or 0.0 for p in workers), 1)
            out["peak_rss_mb"] = round(sum(hwm_mb(p) or 0.0 for p in workers), 1)  # VmHWM
            info = httpx.get(f"{base}/info", timeout=10)
            out["info_status"] = info.status_code
            out["rss_timeline_mb"] = samples[:: max(1, len(samples) // 40)]
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return out


# ---------------------------------------------------------------------------------------------
# where a worker's start-up goes


def _self_rss_mb() -> float:
    return rss_mb(os.getpid()) or 0.0


def profile_load(store_env: dict, snapshot: Path) -> dict:
    """The stages of :func:`serving.state.load_state`, one by one in this process."""
    from dataclasses import replace

    os.environ.update({k: v for k, v in store_env.items()})
    os.environ["CRM_ONLINE_SNAPSHOT"] = str(snapshot)
    stages: list[dict] = []

    def stage(name: str, fn):
        gc.collect()
        before = _self_rss_mb()
        t0 = time.perf_counter()
        value = fn()
        after = _self_rss_mb()
        stages.append({"stage": name, "seconds": round(time.perf_counter() - t0, 2),
                       "rss_after_mb": after, "rss_delta_mb": round(after - before, 1)})  # fmt: skip
        print(f"  {name}: {stages[-1]}", file=sys.stderr)
        return value

    from features.online import load_online_snapshot
    from serving.config import ServiceSettings
    from serving.state import (
        LoadedState,
        _load_models,
        _load_value_model,
        present,
        score_table,
    )

    settings = ServiceSettings.from_env()
    churn, recommender, _ = stage("load models", lambda: _load_models(settings))
    churn.model.num_threads = 1
    retrieval = getattr(recommender.model, "retrieval", recommender.model)
    value = stage("load value model", lambda: _load_value_model(settings))
    snap = stage("load_online_snapshot", lambda: load_online_snapshot(snapshot))
    frame = snap.snapshot
    n = len(frame)
    # the alternatives first, on the same data: what the churn scoring costs in its parts
    vm = value and value.model
    stage("churn probabilities only (no reasons)", lambda: churn.model.score(frame, with_reasons=False))
    stage("churn contributions (the reasons' trees pass)", lambda: churn.model.contributions(
        churn.model.matrix(frame.reset_index(drop=True))))  # fmt: skip
    head = frame.reset_index(drop=True).head(50_000)
    t_reasons = stage("reasons of 50,000 rows (Python per row)", lambda: churn.model.reasons(head))
    del t_reasons
    scored = stage(
        "score_table (every customer; reasons when shown)", lambda: score_table(churn.model, frame, vm)
    )
    table = scored.table
    state = LoadedState(
        churn=churn.model, churn_uri=churn.uri, churn_version=churn.version, retrieval=retrieval,
        recommender_uri=recommender.uri, recommender_version=recommender.version, snapshot=snap,
        scored=scored, value_model=vm,
    )  # fmt: skip
    presenter = stage("present (Presenter.from_snapshot)", lambda: present(retrieval, snap, scored.row))
    state = replace(state, presenter=presenter)
    ids = [str(c) for c in frame.index]

    def lists_only():  # the Python part of the precompute: each customer's snapshot lists as positions
        for lo in range(0, len(ids), 4096):
            retrieval.fresh_lists(ids[lo : lo + 4096], snap)

    stage("precompute: fresh_lists alone (per-customer Python)", lists_only)
    top = stage("precompute (n x MAX_K lists, in the background once serving)", state.precompute)
    sizes = {
        "snapshot_frame_mb": round(frame.memory_usage(deep=True).sum() / 2**20, 1),
        "churn_table_mb": round(table.memory_usage(deep=True).sum() / 2**20, 1),
        "top_lists_mb": round((top.items.nbytes + top.probability.nbytes + top.fallback.nbytes) / 2**20, 1),
        "presenter_newest_mb": round(getattr(state.presenter.newest, "nbytes", 0) / 2**20, 1),
    }
    return {"customers": n, "stages": stages, "sizes": sizes, "final_rss_mb": _self_rss_mb(),
            "peak_rss_mb": hwm_mb(os.getpid())}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--steady-seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true", help="time load_state's stages in process")
    parser.add_argument("--no-serve", action="store_true", help="skip starting crm serve")
    parser.add_argument(
        "--variants", default="default",
        help="service configurations started one after the other: a comma list of"
        f" {', '.join(SERVE_VARIANTS)}",
    )  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    store_env = prepare_models(args.data, args.work, args.preset)
    info = store_env.pop("info")
    base = Path(store_env["CRM_ONLINE_SNAPSHOT"])
    large = args.work / f"online-{args.customers}"
    print(f"building the {args.customers:,}-customer online snapshot in {large}", file=sys.stderr)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_before": os.getloadavg()},
        "models": info,
        "snapshot": {"path": str(large), **build_large_snapshot(base, large, args.customers)},
    }  # fmt: skip
    started = time.time()
    if not args.no_serve:
        for name in args.variants.split(","):
            print(f"crm serve on the large state ({name})", file=sys.stderr)
            out = measure_serve(
                store_env, large, args.data, args.work, args.steady_seconds, SERVE_VARIANTS[name]
            )
            results.setdefault("serve_variants", {})[name] = {"env": SERVE_VARIANTS[name], **out}
        results["serve"] = results["serve_variants"][args.variants.split(",")[0]]
    if args.profile:
        print("profiling load_state's stages", file=sys.stderr)
        results["profile"] = profile_load(store_env, large)
    results["machine"]["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.time() - started, 1)
    results["acceptance"] = acceptance(results)
    emit(results, args.out)


def acceptance(r: dict) -> dict:
    """The issue's 1M-customer bars, from this run (per service variant; the first's at the top)."""
    out: dict = {}
    for name, serve in r.get("serve_variants", {}).items():
        ready, peak = serve.get("time_to_ready_s"), serve.get("peak_rss_mb")
        out[name] = {
            "customers": r["snapshot"]["customers"],
            "time_to_ready_s": ready,
            "ready_bar_met": ready is not None and ready <= READY_BAR_S,
            "time_to_lists_s": serve.get("time_to_lists_s"),
            "worker_peak_rss_mb": peak,
            "worker_steady_rss_mb": serve.get("steady_rss_mb"),
            "rss_bar_met": peak is not None and peak <= RSS_BAR_MB and serve.get("steady_errors") == 0,
        }
    return {**next(iter(out.values()), {}), "variants": out} if out else {}


if __name__ == "__main__":
    main()
