"""The online path: ``POST /events`` into the durable log, and the log into every worker's overlay.

Accepting (:meth:`EventFeed.accept`): the posted events are checked by the input contract's own
rules (:func:`features.contract.check_rows`, the code ``crm data validate`` runs), the clean ones
are appended to the event log (:class:`features.eventlog.EventLog`) and the answer is given only
once that commit is fsynced. Requests that wait together are committed together (one check, one
transaction, one fsync for all of them), each still answered on its own; a group waits up to
``GROUP_WAIT_SECONDS`` for as many requests as the last one had. The check and the
append run in a child process of the worker (:class:`CommitProcess`, started with the first
events): the event loop only turns the parsed events into tuples, and a thread of the worker hands
each group to the child and waits, without the GIL, for its answers (``CRM_EVENT_COMMIT_PROCESS=0``
runs them on that thread instead). Rejected rows come back with their index and reason; a row
without an ``event_id`` that the log already holds is a ``duplicate``, one whose ``event_id`` it
holds is acknowledged again (a retry).

Applying: every worker runs a thread that reads the log from its own offset (``read_since``)
into its :class:`~serving.live.LiveOverlay`, which ``/recommend`` and ``/churn_score`` read beside
the loaded state. A worker that accepts events wakes its own thread at once; the others find them
at their next poll. A worker that starts, or finds a snapshot with a new as-of after a reload,
builds a new overlay from the log's offset at that as-of (``offset_at(as_of)``: the log accepts
no event dated after its arrival, so every event the snapshot cannot hold was accepted after the
as-of) and swaps it in when it has caught up. Another thread has the churn scores of the
customers touched recomputed every ``CRM_CHURN_REFRESH_SECONDS``, by the feature SQL over their
history, at most ``CHURN_REFRESH_BATCH`` customers at a time (the others wait for the next
refresh, touched first refreshed first). The work runs in a child process of the worker
(:class:`serving.live.RefreshProcess`, at a lower CPU priority): the worker's thread only sends
the ids and waits for the answers, so the refresh never holds the GIL beside the event loop;
``CRM_CHURN_REFRESH_PROCESS=0`` runs it on the thread itself. It waits longer after a slow
refresh, so that it never takes more than ``CHURN_REFRESH_SHARE`` of the worker's time on the
thread (``CHURN_REFRESH_PROCESS_SHARE`` of a CPU in the process). Workers share nothing but the
log, so replicas on other hosts run the same way from a Kafka topic (see
:mod:`features.eventlog`).

| variable | default | meaning |
|---|---|---|
| ``CRM_DATA_DIR`` | ``data/`` beside the online snapshot | the data folder (its ``validated/`` history) |
| ``CRM_EVENT_LOG`` | ``DATA/eventlog.sqlite`` | the event log |
| ``CRM_PUSH_COOLDOWN_DAYS`` | ``14`` | a pushed item is not offered again for this long |
| ``CRM_EVENT_POLL_SECONDS`` | ``0.1`` | how often a worker reads the log for other workers' events |
| ``CRM_CHURN_REFRESH_SECONDS`` | ``2`` | how often touched customers' churn scores are recomputed (0: off) |
| ``CRM_CHURN_REFRESH_PROCESS`` | ``1`` | recompute them in a child process (0: on a thread of the worker) |
| ``CRM_EVENT_COMMIT_PROCESS`` | ``1`` | check and log posted events in a child process (0: on a thread) |
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import UserError
from features.eventlog import EVENT_LOG_NAME, EventLog
from serving.live import (
    ChildFailed,
    ChildProcess,
    ChurnRefresher,
    LiveOverlay,
    RefreshProcess,
    refresh_as_of,
    serve_child,
)

if TYPE_CHECKING:
    from serving.schemas import PostedEvent
    from serving.state import LoadedState

logger = logging.getLogger("crm.serving.events")

DEFAULT_DATA_DIR = Path("out/demo/data")  # beside the default online snapshot, as `crm demo` lays them out
CATCH_UP_BATCH = 50_000  # events per read while an overlay is (re)built
GROUP_ROWS = 20_000  # at most this many rows of waiting requests are committed together
# a group waits this long at most for as many requests as the last group had: the clients that
# were answered together send again together, and one check serves them all (a check costs
# tens of milliseconds whatever its size, so two half groups take twice as long as one)
GROUP_WAIT_SECONDS = 0.01
CHURN_REFRESH_SHARE = 0.1  # the most of a worker's time the churn refresh may take on its thread
CHURN_REFRESH_PROCESS_SHARE = 0.5  # the most of a CPU the refresh process may take (it is nice'd)
CHURN_REFRESH_BATCH = 5_000  # customers per refresh at most; the others wait for the next


class EventSettings(BaseModel):
    """Where the log is and how the overlay behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = DEFAULT_DATA_DIR
    event_log: Path | None = None  # None: DATA/eventlog.sqlite
    push_cooldown_days: float = Field(14.0, ge=0.0)
    event_poll_seconds: float = Field(0.1, gt=0.0)
    churn_refresh_seconds: float = Field(2.0, ge=0.0)
    churn_refresh_process: bool = True  # False: on a thread of the worker (it holds the GIL)
    event_commit_process: bool = True  # False: check and log posted events on a thread of the worker

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EventSettings:
        """The settings from ``CRM_*`` variables."""
        env = os.environ if environ is None else environ
        names = ("data_dir", "event_log", "push_cooldown_days", "event_poll_seconds", "churn_refresh_seconds",
                 "churn_refresh_process", "event_commit_process")  # fmt: skip
        values = {n: env["CRM_" + n.upper()] for n in names if env.get("CRM_" + n.upper())}
        if env.get("CRM_ONLINE_SNAPSHOT"):  # the data folder beside the snapshot, as `crm demo` has it
            values.setdefault("data_dir", Path(env["CRM_ONLINE_SNAPSHOT"]).parent / "data")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "CRM_" + str(first["loc"][0]).upper()
            raise UserError(f"Environment variable {name} is invalid: {first['msg']}.") from None

    @property
    def log_path(self) -> Path:
        return self.event_log or self.data_dir / EVENT_LOG_NAME


def event_rows(events: Sequence[PostedEvent]) -> list[tuple]:
    """Posted events as plain tuples of ``POSTED_FIELDS`` (what travels to the commit process)."""
    return [
        (e.customer_id, e.ts, e.event_type, e.item_id, e.quantity, e.amount, e.channel, e.event_id)
        for e in events
    ]


POSTED_FIELDS = ("customer_id", "ts", "event_type", "item_id", "quantity", "amount", "channel", "event_id")


def posted_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """Posted rows (:func:`event_rows`) as a frame of the contract's columns (text timestamps) and
    ``event_id``."""
    customer, ts, event_type, item, quantity, amount, channel, event_id = (
        zip(*rows, strict=True) if rows else ((),) * len(POSTED_FIELDS)
    )
    return pd.DataFrame(
        {
            "customer_id": list(customer),
            "ts": list(ts),
            "event_type": list(event_type),
            "item_id": list(item),
            "quantity": pd.array(list(quantity), dtype="Int64"),
            "amount": pd.array(list(amount), dtype="float64"),
            "channel": list(channel),
            "event_id": list(event_id),
        }
    )


Answer = tuple[int, dict[str, Any]]  # HTTP status and body of one request


class Committer:
    """Checks and logs the rows of several requests at once (one check, one transaction, one fsync),
    each request answered on its own; on the commit thread, or in the commit process."""

    def __init__(self, log: Callable[[], EventLog], log_path: Path) -> None:
        from features.contract import connect

        self._log, self.log_path = log, log_path
        self.con = connect()
        self.con.execute("SET threads = 1")  # small batches: threads cost more than they give

    def commit(self, requests: list[list[tuple]]) -> list[Answer]:
        """One answer per request (a list of :func:`event_rows`)."""
        from features.contract import ContractError, check_rows

        sizes = [len(rows) for rows in requests]
        batch = posted_frame([row for rows in requests for row in rows])  # one frame for the group
        batch["_request"] = np.repeat(np.arange(len(requests), dtype=np.int64), sizes)
        batch["_position"] = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])
        try:
            checked = check_rows(batch, con=self.con)
        except (ContractError, duckdb.Error) as exc:
            if len(requests) > 1:  # one request's bad column must not fail the others
                return [answer for rows in requests for answer in self.commit([rows])]
            return [(400, {"error": str(exc), "field": "events"})]
        try:
            appended = self._log().append(checked.clean)
        except (sqlite3.Error, OSError) as exc:
            logger.error("the event log %s could not be written: %s", self.log_path, exc)
            failed = {"error": f"The event log could not be written ({exc}); nothing was accepted."}
            return [(503, failed)] * len(requests)
        rejected: list[dict[int, str]] = [{} for _ in requests]
        bad = checked.rejected
        for request, position, reason in zip(
            bad["_request"].tolist(), bad["_position"].tolist(), bad["reason"].tolist(), strict=True
        ):
            rejected[request][int(position)] = str(reason)
        clean = np.column_stack(
            [checked.clean["_request"].to_numpy(np.int64), checked.clean["_position"].to_numpy(np.int64)]
        ).reshape(-1, 2)
        accepted = np.bincount(clean[:, 0], minlength=len(requests))
        for row in appended.duplicates:  # logged before: a duplicate, as the files' rule says
            request, position = clean[row]
            rejected[request][int(position)] = "duplicate"
            accepted[request] -= 1
        return [
            (200, {"accepted": int(accepted[i]),
                   "rejected": [{"index": p, "reason": rejected[i][p]} for p in sorted(rejected[i])]})
            for i in range(len(requests))
        ]  # fmt: skip


COMMIT_ANSWER_SECONDS = 60.0  # a commit not answered by then: the process is restarted, the group 503


class CommitProcess:
    """:class:`Committer` in a child process (:class:`serving.live.ChildProcess`) of the worker.

    Checking a group of rows (DuckDB and pandas) and appending them (Python per row, SQLite)
    takes tens of milliseconds, most of it holding the GIL: on a thread of the worker it delayed
    every request beside it. The child holds its own DuckDB connection and its own connection to
    the log; the worker sends the requests' rows as tuples and waits, without the GIL, for the
    answers, which the child gives only after its commit is fsynced, as the thread did. A child
    that dies before answering fails its group with a 503 (resending is safe: an ``event_id`` is
    logged once, and an exact duplicate without one is reported as such).
    """

    def __init__(self, log_path: Path) -> None:
        self.child = ChildProcess(
            "serving.events", [log_path], "the event commit process", COMMIT_ANSWER_SECONDS
        )

    def start(self) -> None:
        self.child.start()

    def close(self) -> None:
        self.child.close()

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def commit(self, requests: list[list[tuple]]) -> list[Answer]:
        try:
            return self.child.ask("commit", requests)
        except ChildFailed as exc:
            logger.error("%s", exc)
            failed = {"error": f"The event log could not be written ({exc}); resend the events."}
            return [(503, failed)] * len(requests)


def _commit_child(fd: int, log_path: str) -> None:
    """The commit process: groups of requests' rows checked, logged and answered."""
    log = EventLog(log_path)
    committer = Committer(lambda: log, Path(log_path))
    serve_child(fd, {"commit": committer.commit})


class EventFeed:
    """This worker's side of the online path: accepting events and applying the log."""

    def __init__(self, settings: EventSettings, state: Callable[[], LoadedState | None]) -> None:
        self.settings = settings
        self._state = state
        self._log: EventLog | None = None
        self._log_lock = threading.Lock()
        self._commits: queue.Queue[tuple[list[tuple], Future]] = queue.Queue()  # requests to log
        self._committer: threading.Thread | None = None
        self._commit_process: CommitProcess | None = None
        self.overlay: LiveOverlay | None = None  # read by requests; replaced whole
        self._overlay_state: LoadedState | None = None  # the state the overlay's scores belong to
        self._pending: dict[str, None] = {}  # customers whose churn score is to be recomputed, oldest first
        self._pending_lock = threading.Lock()
        self._refresher: ChurnRefresher | None = None
        self._refresher_lock = threading.Lock()
        self._process: RefreshProcess | None = None  # the refresh's child process, when it has one
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.refreshed = 0  # churn scores recomputed since start

    @classmethod
    def from_env(cls, state: Callable[[], LoadedState | None]) -> EventFeed:
        return cls(EventSettings.from_env(), state)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(days=self.settings.push_cooldown_days)

    def event_log(self) -> EventLog:
        """The log, opened (and created) on first use."""
        with self._log_lock:
            if self._log is None:
                self._log = EventLog(self.settings.log_path)
            return self._log

    # -- accepting --------------------------------------------------------------------------

    def accept(self, events: Sequence[PostedEvent]) -> tuple[int, dict[str, Any]]:
        """Check and log posted events; (HTTP status, answer). 200 only after the fsync.

        Requests that arrive together are committed together (group commit): the committer thread
        checks their rows in one pass and appends them in one transaction, so one fsync and one
        round of checks serve them all; each answer is still its own request's.
        """
        request: Future[tuple[int, dict[str, Any]]] = Future()
        self._commits.put((event_rows(events), request))
        self._start_committer()
        return request.result()

    async def accept_async(self, events: Sequence[PostedEvent]) -> tuple[int, dict[str, Any]]:
        """:meth:`accept` for the event loop: it waits for the commit without holding a thread."""
        request: Future[tuple[int, dict[str, Any]]] = Future()
        self._commits.put((event_rows(events), request))  # tuples: the rest is off the event loop
        self._start_committer()
        return await asyncio.wrap_future(request)

    def _start_committer(self) -> None:
        with self._log_lock:
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._commit_loop, name="crm-event-commit", daemon=True
                )
                self._committer.start()

    def _commit_loop(self) -> None:
        if self.settings.event_commit_process:
            with self._log_lock:
                if self._commit_process is None:
                    self._commit_process = CommitProcess(self.settings.log_path)
                process = self._commit_process
            with contextlib.suppress(ChildFailed):
                process.start()  # now, not at the first request (its imports take a second)
            commit = process.commit
        else:
            commit = Committer(self.event_log, self.settings.log_path).commit
        expected = 1  # requests in the last group: the clients that are likely to send again
        while True:
            group = [self._commits.get()]
            rows = len(group[0][0])
            deadline = time.monotonic() + GROUP_WAIT_SECONDS
            while rows < GROUP_ROWS:
                try:
                    if len(group) < expected:  # the others answered last time are on their way
                        group.append(self._commits.get(timeout=max(deadline - time.monotonic(), 0.0)))
                    else:
                        group.append(self._commits.get_nowait())
                except queue.Empty:
                    break
                rows += len(group[-1][0])
            expected = len(group)
            try:
                answers = commit([events for events, _ in group])
            except BaseException as exc:  # reported to every request of the group
                for _, request in group:
                    request.set_exception(exc)
                continue
            for (_, request), answer in zip(group, answers, strict=True):
                request.set_result(answer)
            self._wake.set()  # this worker applies its own events at once

    # -- applying ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads that apply the log and refresh the touched customers' churn scores
        (their processes start with the first events)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="crm-event-feed", daemon=True)
            self._thread.start()
            if self.settings.churn_refresh_seconds > 0:
                threading.Thread(target=self._refresh_loop, name="crm-churn-refresh", daemon=True).start()

    def stop(self) -> None:
        """Stop the threads and the child processes (commit and churn refresh)."""
        self._stop.set()
        self._wake.set()
        with self._refresher_lock:
            process, self._process = self._process, None
        if process is not None:
            process.close()
        with self._log_lock:
            committer, self._commit_process = self._commit_process, None
        if committer is not None:
            committer.close()

    def _refresh_loop(self) -> None:
        """Recompute the pending customers' scores every ``churn_refresh_seconds``; a slow refresh
        waits longer before the next, so that it never takes more than ``CHURN_REFRESH_SHARE`` of
        the worker's time on its thread (``CHURN_REFRESH_PROCESS_SHARE`` of a CPU in its process)."""
        share = CHURN_REFRESH_PROCESS_SHARE if self.settings.churn_refresh_process else CHURN_REFRESH_SHARE
        wait = self.settings.churn_refresh_seconds
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self.refresh_scores()
            except Exception as exc:  # a failed refresh keeps the last scores; the error is reported
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("refreshing the churn scores failed")
            elapsed = time.monotonic() - started
            wait = max(self.settings.churn_refresh_seconds, elapsed / share - elapsed)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.last_error = None
            except Exception as exc:  # the feed must outlive a bad read; the error is reported
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("applying the event log failed")
            self._wake.wait(self.settings.event_poll_seconds)
            self._wake.clear()

    def poll_once(self) -> int:
        """Apply what the log holds beyond the overlay's offset; returns the events applied."""
        state = self._state()
        if state is None or not self.settings.log_path.exists():
            return 0
        as_of = datetime.fromisoformat(state.snapshot.as_of)
        overlay = self.overlay
        if overlay is None or overlay.as_of != as_of:
            overlay = self._rebuilt(as_of)  # a new snapshot: replay from its as-of
            self.overlay, self._overlay_state = overlay, state
            self._touch(set(overlay.customers))
        elif self._overlay_state is not state:  # new models, same snapshot: rescore the touched
            overlay.scores = {}
            self._overlay_state = state
            self._touch(set(overlay.customers))
        return self._catch_up(overlay)

    def _touch(self, customers: Iterable[str]) -> None:
        if self.settings.churn_refresh_seconds <= 0:
            return  # nothing refreshes them: nothing to remember
        with self._pending_lock:
            self._pending.update(dict.fromkeys(customers))

    def _take_pending(self, limit: int) -> list[str]:
        """Up to ``limit`` pending customers, those touched first first; they leave the queue."""
        with self._pending_lock:
            if len(self._pending) <= limit:
                customers, self._pending = list(self._pending), {}
                return customers
            customers = list(itertools.islice(self._pending, limit))
            for customer in customers:
                del self._pending[customer]
            return customers

    def _rebuilt(self, as_of: datetime) -> LiveOverlay:
        log = self.event_log()
        overlay = LiveOverlay(as_of, self.cooldown, offset=log.offset_at(as_of))
        refresher = self._churn_refresher()
        if refresher is not None and self.cooldown > timedelta(0):
            overlay.with_pushes(refresher.pushes_before(as_of, self.cooldown))
        self._catch_up(overlay, CATCH_UP_BATCH)
        logger.info("event overlay as of %s: %d events replayed", as_of, overlay.applied)
        return overlay

    def _catch_up(self, overlay: LiveOverlay, limit: int = 10_000) -> int:
        log, applied = self.event_log(), 0
        while True:
            events, offset = log.read_since(overlay.offset, limit)
            if events.empty:
                return applied
            self._touch(overlay.apply(events))
            overlay.offset = offset
            applied += len(events)

    def _churn_refresher(self) -> ChurnRefresher | None:
        with self._refresher_lock:
            if self._refresher is None and (self.settings.data_dir / "validated").is_dir():
                self._refresher = ChurnRefresher(self.settings.data_dir, self.event_log())
            return self._refresher

    def _scorer(self) -> ChurnRefresher | RefreshProcess | None:
        """What recomputes scores: the refresh process (its child starts with the first request),
        or this worker's own refresher; None without a data folder."""
        if not self.settings.churn_refresh_process:
            return self._churn_refresher()
        with self._refresher_lock:
            if self._process is None and not self._stop.is_set():
                if (self.settings.data_dir / "validated").is_dir():
                    self._process = RefreshProcess(self.settings.data_dir, self.settings.log_path)
            return self._process

    def refresh_scores(self, limit: int = CHURN_REFRESH_BATCH) -> int:
        """Recompute the churn scores of up to ``limit`` customers touched since the last refresh
        (the feature SQL over their history, as of the overlay's clock); returns how many were
        recomputed. The others stay pending for the next refresh (bounded work per refresh)."""
        overlay, state = self.overlay, self._overlay_state
        customers = self._take_pending(limit)
        if not customers or overlay is None or state is None:
            return 0
        scorer = self._scorer()
        if scorer is None:
            return 0
        try:
            scores = scorer.scores(state, customers, refresh_as_of(overlay.clock))
        except BaseException:
            self._touch(customers)  # tried again at the next refresh
            raise
        if self.overlay is overlay and self._overlay_state is state:  # else a rebuild rescores them
            overlay.scores.update(scores)  # per customer: a reader sees its old score or its new one
        self.refreshed += len(customers)
        return len(customers)

    # -- reading, for the endpoints ---------------------------------------------------------

    def churn_scores(self, state: LoadedState, customer_ids: list[str]) -> list[dict[str, Any]]:
        """The state's churn scores with the refreshed ones of touched customers."""
        overlay = self.overlay
        refreshed = overlay.scores if overlay is not None and self._overlay_state is state else {}
        if not refreshed:
            return state.churn_scores(customer_ids)
        base = state.churn_scores(customer_ids)
        return [refreshed.get(c, b) for c, b in zip(customer_ids, base, strict=True)]

    def info(self) -> dict[str, Any]:
        """What /info reports of the feed."""
        overlay = self.overlay
        return {
            "event_log": str(self.settings.log_path),
            "events_applied": overlay.applied if overlay else 0,
            "event_offset": overlay.offset if overlay else None,
            "customers_touched": len(overlay.customers) if overlay else 0,
            "churn_refresh_pending": len(self._pending),  # touched, their scores not yet recomputed
            "churn_refreshed": self.refreshed,
            "event_feed_error": self.last_error,
        }


if __name__ == "__main__":  # the commit process (CommitProcess)
    import sys

    logging.basicConfig(level=logging.WARNING)
    _commit_child(int(sys.argv[1]), sys.argv[2])
