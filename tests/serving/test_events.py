"""POST /events and the live overlay: durable, validated like files, and in the next answer.

The ``events_client`` fixture is a started service with an event log of its own, once with the fast
lane and once through BentoML's full pipeline. Event times are taken from the snapshot's as-of, so
nothing depends on today's date; waits are bounded loops for the overlay to change, never timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest

from features.eventlog import EVENT_COLUMNS, EventLog
from serving.schemas import PostedEvent
from tests.server import free_port
from tests.serving.conftest import ServingEnv, start_client

WAIT_SECONDS = 60.0  # the most a test waits for the overlay; it returns as soon as it changed


def wait_for(condition: Callable[[], object], what: str, seconds: float = WAIT_SECONDS) -> object:
    """Poll ``condition`` until it is truthy (bounded); fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not seen within {seconds:g} s: {what}")


def snapshot_as_of(env: ServingEnv) -> datetime:
    return datetime.fromisoformat(json.loads((env.snapshot / "manifest.json").read_text())["as_of"])


def at(env: ServingEnv, hours: float) -> str:
    """An ISO 8601 time ``hours`` after the snapshot's as-of."""
    return (snapshot_as_of(env) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module", params=["fast_lane", "bentoml"])
def events_client(request, serving_env: ServingEnv, tiny_data: Path, tmp_path_factory):
    log = tmp_path_factory.mktemp("events") / "eventlog.sqlite"
    c = start_client(
        serving_env,
        CRM_FAST_LANE="1" if request.param == "fast_lane" else "0",
        CRM_EVENT_LOG=str(log),
        CRM_DATA_DIR=str(tiny_data),
        CRM_CHURN_REFRESH_SECONDS="0.2",
    )
    c.log_path = log
    yield c
    c.__exit__(None, None, None)


def recommended(client, customer_id: str, k: int = 10, **extra) -> list[str]:
    r = client.post("/recommend", json={"customer_id": customer_id, "k": k, **extra})
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def post(client, events: list[dict]) -> dict:
    r = client.post("/events", json={"events": events})
    assert r.status_code == 200, r.text
    return r.json()


def purchase(env: ServingEnv, customer_id: str, item_id: str, hours: float = 1.0, **extra) -> dict:
    return {"customer_id": customer_id, "ts": at(env, hours), "event_type": "purchase", "item_id": item_id,
            "quantity": 1, "amount": 100.0, "channel": "app", **extra}  # fmt: skip


# --- recommendations change at once ---------------------------------------------------------------


def test_a_just_bought_item_is_no_longer_recommended(events_client, serving_env):
    customer = serving_env.known_customers[10]
    top = recommended(events_client, customer)[0]  # from the precomputed list
    answer = post(events_client, [purchase(serving_env, customer, top, event_id=f"buy-{customer}")])
    assert answer == {"accepted": 1, "rejected": []}
    wait_for(lambda: top not in recommended(events_client, customer), f"{top} dropped for {customer}")
    batch = events_client.post("/recommend_batch", json={"customer_ids": [customer], "k": 10}).json()
    assert top not in [i["item_id"] for i in batch["results"][0]["items"]]


def test_a_phone_bought_online_feeds_the_customer_tower_as_a_fresh_purchase(events_client, serving_env):
    """The answer after the event is the recommender's own answer for the snapshot's history with
    the phone as the newest purchase (the path on which training shows the shift towards
    accessories and wearables): the purchase reaches the recent-items mean and the intent, not only
    the owned filter."""
    from features.online import load_online_snapshot
    from serving.registry import load_python_model, resolve_model_uri

    snapshot = load_online_snapshot(serving_env.snapshot)
    items = snapshot.items
    phones = items[(items["category"] == "phone") & items["active"]]
    phone = str(phones.sort_values("purchases_recent", ascending=False)["item_id"].iloc[0])
    customers = serving_env.known_customers[100:400]
    answer = post(events_client, [purchase(serving_env, c, phone, hours=2.0) for c in customers])
    assert answer["accepted"] == len(customers)

    def batch() -> list[dict]:
        r = events_client.post("/recommend_batch", json={"customer_ids": customers, "k": 10})
        return r.json()["results"]

    wait_for(lambda: not any(x["item_id"] == phone for row in batch() for x in row["items"]), "phone applied")
    ref = resolve_model_uri("models:/recommender@champion", serving_env.store.tracking)
    model = load_python_model(ref.location)  # what the service loaded
    retrieval = getattr(model, "retrieval", model)
    recent = {c: list(dict.fromkeys([phone, *snapshot.recent_items(c)]))[:10] for c in customers}
    owned = {c: [*snapshot.owned_items(c), phone] for c in customers}
    expected = retrieval.recommend(customers, k=10, recent_items=recent, owned_items=owned)
    got = batch()
    assert [[x["item_id"] for x in row["items"]] for row in got] == [
        [x["item_id"] for x in row["items"]] for row in expected
    ]


def test_exclude_items_are_never_offered(events_client, serving_env):
    customer = serving_env.known_customers[20]
    first = recommended(events_client, customer, k=5)
    left_out = first[:2]
    again = recommended(events_client, customer, k=5, exclude_items=left_out)
    assert not set(again) & set(left_out) and len(again) == 5
    unknown = recommended(events_client, "nobody-at-all", k=5)
    assert not set(recommended(events_client, "nobody-at-all", k=5, exclude_items=unknown[:1])) & {unknown[0]}


def test_exclude_items_limits_are_400(events_client, serving_env):
    body = {"customer_id": serving_env.known_customers[0], "exclude_items": [""]}
    r = events_client.post("/recommend", json=body)
    assert r.status_code == 400 and r.json()["field"].startswith("exclude_items")


def test_a_pushed_item_is_not_offered_for_the_cool_down(events_client, serving_env):
    """Last in the module: it moves the overlay's event-time clock 15 days on."""
    customer = serving_env.known_customers[30]
    top = recommended(events_client, customer)[0]
    push = {"customer_id": customer, "ts": at(serving_env, 24), "event_type": "push_sent", "item_id": top,
            "channel": "app"}  # fmt: skip
    post(events_client, [push])
    wait_for(lambda: top not in recommended(events_client, customer), "the pushed item held back")
    later = {"customer_id": "someone-else", "ts": at(serving_env, 24 + 15 * 24), "event_type": "app_open"}
    post(events_client, [later])  # the clock passes the 14-day cool-down
    wait_for(lambda: top in recommended(events_client, customer), "the pushed item offered again")


# --- the churn score and stage of touched customers ---------------------------------------------


def test_a_lapsed_customer_who_buys_is_rescored_and_no_longer_lapsed(events_client, serving_env):
    scores = events_client.post("/churn_score", json={"customer_ids": serving_env.known_customers}).json()
    lapsed = [s["customer_id"] for s in scores["scores"] if s["lifecycle_stage"] == "lapsed"][:3]
    assert lapsed, "the tiny preset has lapsed customers"
    items = pd.read_parquet(serving_env.snapshot / "items.parquet")
    item = str(items.loc[items["active"], "item_id"].iloc[0])
    post(events_client, [purchase(serving_env, c, item, hours=3.0) for c in lapsed])

    def stages() -> list[str]:
        r = events_client.post("/churn_score", json={"customer_ids": lapsed}).json()
        return [s["lifecycle_stage"] for s in r["scores"]]

    wait_for(lambda: "lapsed" not in stages(), "the buyers' stage refreshed")


# --- validation, idempotency, the log ----------------------------------------------------------------


def test_bad_rows_are_rejected_with_the_reasons_of_crm_data_validate_and_good_ones_kept(
    events_client, serving_env, tmp_path
):
    from features.contract import validate

    customer = serving_env.known_customers[40]
    t = at(serving_env, 4)
    events = [
        {"customer_id": customer, "ts": t, "event_type": "view", "item_id": "I00001"},
        {"customer_id": None, "ts": t, "event_type": "view", "item_id": "I00001"},
        {"customer_id": customer, "ts": "yesterday-ish", "event_type": "view", "item_id": "I00001"},
        {"customer_id": customer, "ts": "2999-01-01T00:00:00Z", "event_type": "view", "item_id": "I00001"},
        {"customer_id": customer, "ts": t, "event_type": "teleport"},
        {"customer_id": customer, "ts": t, "event_type": "add_to_cart"},
        {"customer_id": customer, "ts": t, "event_type": "purchase", "quantity": -2},
        {"customer_id": customer, "ts": t, "event_type": "view", "item_id": "I2", "channel": "fax"},
        {"customer_id": customer, "ts": t, "event_type": "VIEW", "item_id": "I00001"},
        {"customer_id": customer, "ts": at(serving_env, 5), "event_type": "app_open", "channel": "app"},
    ]  # fmt: skip
    answer = post(events_client, events)
    assert answer["accepted"] == 2
    posted = {r["index"]: r["reason"] for r in answer["rejected"]}
    frame = pd.DataFrame([{c: e.get(c) for c in EVENT_COLUMNS} for e in events])
    frame["quantity"] = frame["quantity"].astype("Int64")
    frame.to_parquet(tmp_path / "events.parquet")  # the same rows as a file: ts as text
    validate(tmp_path, max_reject_share=1.0, reuse=False)
    files = pd.read_parquet(tmp_path / "rejects" / "events.parquet")
    assert len(files) == len(posted) == 8
    assert sorted(posted.values()) == sorted(files["reason"])


def test_a_replayed_batch_changes_nothing(events_client, serving_env):
    customer = serving_env.known_customers[50]
    with_ids = [
        purchase(serving_env, customer, f"I0000{i}", hours=6, event_id=f"replay-{i}") for i in range(3)
    ]
    without = [{"customer_id": customer, "ts": at(serving_env, 6), "event_type": "app_open"}]
    first = post(events_client, with_ids + without)
    count = EventLog(events_client.log_path).count()
    second = post(events_client, with_ids + without)
    assert first == {"accepted": 4, "rejected": []}
    assert second == {"accepted": 3, "rejected": [{"index": 3, "reason": "duplicate"}]}
    assert EventLog(events_client.log_path).count() == count


def test_malformed_bodies_are_400_naming_the_field(events_client):
    for body, field in (
        ({"events": [{"customer_id": "C1", "quantity": "two"}]}, "events.0.quantity"),
        ({"events": [{"customer_id": "C1", "colour": "red"}]}, "events.0.colour"),
        ({"events": "not a list"}, "events"),
        ({}, "events"),
        ({"events": [{"customer_id": "C1"}] * 10_001}, "events"),
    ):
        r = events_client.post("/events", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"].startswith(field), r.json()


def test_two_workers_apply_each_others_events(events_client, serving_env, tiny_data):
    """A second feed on the same log (what another worker runs) sees what this service accepted."""
    from serving.events import EventFeed, EventSettings

    state = SimpleNamespace(
        snapshot=SimpleNamespace(as_of=f"{snapshot_as_of(serving_env):%Y-%m-%d %H:%M:%S}")
    )
    other = EventFeed(
        EventSettings(event_log=events_client.log_path, data_dir=tiny_data, churn_refresh_seconds=0),
        lambda: state,
    )
    customer = serving_env.known_customers[60]
    post(events_client, [purchase(serving_env, customer, "I00007", hours=7, event_id=f"w2-{customer}")])
    other.poll_once()
    assert "I00007" in other.overlay.get(customer).owned
    status, answer = other.accept([])
    assert status == 200 and answer == {"accepted": 0, "rejected": []}


def test_requests_committed_together_each_get_their_own_answer(tmp_path):
    """Group commit: concurrent requests share one check and one fsync, not their answers."""
    from concurrent.futures import ThreadPoolExecutor

    from serving.events import EventFeed, EventSettings
    from serving.schemas import PostedEvent

    feed = EventFeed(EventSettings(event_log=tmp_path / "log.sqlite", churn_refresh_seconds=0), lambda: None)
    ts = "2025-12-30T10:00:00Z"

    def request(r: int) -> tuple[int, dict]:
        events = [PostedEvent(customer_id=f"G{r}-{i}", ts=ts, event_type="app_open") for i in range(50)]
        events.append(PostedEvent(customer_id=None, ts=ts, event_type="app_open"))  # 50: no customer
        events.append(PostedEvent(customer_id="shared", ts=ts, event_type="app_open"))  # 51: in every request
        return feed.accept(events)

    with ThreadPoolExecutor(8) as pool:
        answers = [answer for status, answer in pool.map(request, range(16)) if status == 200]
    assert len(answers) == 16
    assert all({"index": 50, "reason": "null_customer_id"} in a["rejected"] for a in answers)
    shared = [a for a in answers if {"index": 51, "reason": "duplicate"} not in a["rejected"]]
    assert len(shared) == 1 and shared[0]["accepted"] == 51  # the first to be logged keeps it
    assert sum(a["accepted"] for a in answers) == EventLog(tmp_path / "log.sqlite").count() == 16 * 50 + 1


# --- durability across kill -9 of the service ------------------------------------------------------


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`crm serve` in a process group of its own; yields (base URL, process) once ready."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base, proc, log), f"crm serve ready on {base}", seconds=240)
        yield base, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _ready(base: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"crm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    return False


@pytest.mark.slow
def test_an_acknowledged_event_survives_kill_9_of_the_service(serving_env, tiny_data, tmp_path):
    log_path = tmp_path / "eventlog.sqlite"
    env = {**os.environ, **serving_env.env, "CRM_RELOAD_POLL_SECONDS": "0",
           "CRM_EVENT_LOG": str(log_path), "CRM_DATA_DIR": str(tiny_data)}  # fmt: skip
    env.pop("CRM_API_TOKEN", None)  # no auth
    customer = serving_env.known_customers[70]

    def offered(base: str) -> list[str]:
        r = httpx.post(f"{base}/recommend", json={"customer_id": customer})
        return [i["item_id"] for i in r.json()["items"]]

    with serving(env, tmp_path / "first.log") as (base, proc):
        top = offered(base)[0]
        r = httpx.post(
            f"{base}/events", json={"events": [purchase(serving_env, customer, top, event_id="k9")]}
        )
        os.killpg(proc.pid, signal.SIGKILL)  # right after the 2xx: supervisor and workers, no shutdown
    assert r.status_code == 200 and r.json()["accepted"] == 1
    with EventLog(log_path) as log:
        events, _ = log.read_since(0)
    assert events["event_id"].tolist() == ["k9"]
    with serving(env, tmp_path / "second.log") as (base, _):  # the restarted service replays the log
        wait_for(lambda: top not in offered(base), "the logged purchase applied after the restart")


# --- the churn refresh is the snapshot's own SQL over only the touched customers ---------------------


def test_the_churn_refresh_gives_the_full_snapshots_rows_for_the_touched_customers(tiny_data_copy):
    from features.contract import open_validated
    from features.eventlog import EVENT_LOG_NAME
    from features.snapshot import build_snapshot
    from serving.live import ChurnRefresher

    data = tiny_data_copy
    con = open_validated(data)
    end = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    customers = [
        r[0] for r in con.execute("SELECT DISTINCT customer_id FROM events ORDER BY 1 LIMIT 3").fetchall()
    ]
    fresh = pd.DataFrame(
        {
            "customer_id": [*customers, "brand-new"],
            "ts": [end + timedelta(hours=h) for h in range(1, 5)],
            "event_type": ["purchase", "service_ticket", "app_open", "purchase"],
            "item_id": ["I00001", None, None, "I00002"],
            "quantity": pd.array([1, None, None, 1], dtype="Int64"),
            "amount": [199.0, None, None, 49.0],
            "channel": ["app", "mall", "app", "offline_store"],
        }
    )
    with EventLog(data / EVENT_LOG_NAME) as log:
        log.append(fresh)
        as_of = end + timedelta(days=1)
        touched = [*customers, "brand-new"]
        refreshed = ChurnRefresher(data, log).snapshot_rows(touched, as_of).set_index("customer_id")
    full = build_snapshot(open_validated(data), as_of).set_index("customer_id")  # folder + log, everyone
    pd.testing.assert_frame_equal(refreshed.loc[touched], full.loc[touched], check_like=True)


# --- off the worker's GIL: the commits and the churn refresh in child processes -----------------------


def test_commits_and_the_churn_refresh_run_in_child_processes_that_end_with_the_feed(
    serving_env, tiny_data, tmp_path
):
    """The feed's commit and churn refresh processes are processes of their own (started with the
    first events, started again when one died) that answer as the worker's own code does, and
    stop with the feed."""
    from serving.events import EventFeed, EventSettings
    from serving.live import ChurnRefresher, refresh_as_of
    from serving.registry import load_python_model, resolve_model_uri

    churn = load_python_model(
        resolve_model_uri("models:/churn@champion", serving_env.store.tracking).location
    )
    as_of = f"{snapshot_as_of(serving_env):%Y-%m-%d %H:%M:%S}"
    state = SimpleNamespace(snapshot=SimpleNamespace(as_of=as_of), churn=churn, value_model=None)
    log_path = tmp_path / "eventlog.sqlite"
    feed = EventFeed(
        EventSettings(event_log=log_path, data_dir=tiny_data, churn_refresh_seconds=60), lambda: state
    )
    customers = serving_env.known_customers[200:203]
    try:
        status, answer = feed.accept(
            [PostedEvent(**purchase(serving_env, c, "I00003", hours=9)) for c in customers]
        )
        assert status == 200 and answer == {"accepted": 3, "rejected": []}
        commit_pid = feed._commit_process.pid
        os.kill(commit_pid, signal.SIGKILL)  # a dead commit process is started again by the next request
        feed._commit_process.child._proc.wait()  # dead (a request it took before dying is a 503)
        status, answer = feed.accept(
            [PostedEvent(**purchase(serving_env, customers[0], "I00004", hours=9.5))]
        )
        assert status == 200 and answer["accepted"] == 1 and feed._commit_process.pid != commit_pid
        assert EventLog(log_path).count() == 4

        feed.poll_once()
        assert feed.refresh_scores() == 3  # the touched customers, by the refresh process
        refresh_pid = feed._process.pid
        assert refresh_pid not in (None, os.getpid())
        with EventLog(log_path) as log:  # the same rows and scores as the worker's own refresher
            own = ChurnRefresher(tiny_data, log).scores(state, customers, refresh_as_of(feed.overlay.clock))
        assert {c: feed.overlay.scores[c] for c in customers} == own
        os.kill(refresh_pid, signal.SIGKILL)
        feed._process.child._proc.wait()
        feed.accept([PostedEvent(**purchase(serving_env, customers[1], "I00005", hours=10))])
        feed.poll_once()
        assert feed.refresh_scores() == 1 and feed._process.pid != refresh_pid
        pids = [feed._commit_process.pid, feed._process.pid]
    finally:
        feed.stop()
    for pid in pids:  # reaped: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_what_survives_a_full_collection_is_not_scanned_again_and_is_still_freed():
    """A worker freezes what survives each full collection (serving.service), so that the live
    overlay's records are scanned by one full collection, not by every one; a frozen record is
    still freed when the overlay drops it."""
    import gc
    import weakref

    from serving.live import CustomerLive
    from serving.service import _freeze_after_full_collections

    class Record:  # what a worker holds per touched customer: plain data, no cycles
        def __init__(self, i: int) -> None:
            self.live = CustomerLive(frozenset({f"I{i}"}))
            self.reasons = [f"reason {i}"]

    gc.callbacks.append(_freeze_after_full_collections)
    try:
        overlay = [Record(i) for i in range(20_000)]
        probe = weakref.ref(overlay[0])
        gc.collect()
        assert gc.get_freeze_count() >= len(overlay)
        assert not any(o is overlay[0] for o in gc.get_objects(generation=2))  # not scanned again
        overlay.clear()  # the overlay replaces its records
        assert probe() is None  # freed at once, frozen or not
    finally:
        gc.callbacks.remove(_freeze_after_full_collections)
        gc.unfreeze()
