"""The online path: ``POST /events`` into the durable log, and the log into every worker's overlay.

Accepting (:meth:`EventFeed.accept`): the posted events are checked by the input contract's own
rules (:func:`features.contract.check_rows`, the code ``crm data validate`` runs), the clean ones
are appended to the event log (:class:`features.eventlog.EventLog`) and the answer is given only
once that commit is fsynced. Requests that wait together are committed together by one thread
(one check, one transaction, one fsync for all of them), each still answered on its own. Rejected
rows come back with their index and reason; a row without an ``event_id`` that the log already
holds is a ``duplicate``, one whose ``event_id`` it holds is acknowledged again (a retry).

Applying: every worker runs a thread that reads the log from its own offset (``read_since``)
into its :class:`~serving.live.LiveOverlay`, which ``/recommend`` and ``/churn_score`` read beside
the loaded state. A worker that accepts events wakes its own thread at once; the others find them
at their next poll. A worker that starts, or finds a snapshot with a new as-of after a reload,
builds a new overlay from the log's offset at that as-of (``offset_at(as_of)``: the log accepts
no event dated after its arrival, so every event the snapshot cannot hold was accepted after the
as-of) and swaps it in when it has caught up. Another thread recomputes the churn scores of the
customers touched every ``CRM_CHURN_REFRESH_SECONDS``, by the feature SQL over their history; it
waits longer after a slow refresh, so that it never takes more than ``CHURN_REFRESH_SHARE`` of
the worker's time. Workers share nothing but the log, so replicas on other hosts run the same
way from a Kafka topic (see :mod:`features.eventlog`).

| variable | default | meaning |
|---|---|---|
| ``CRM_DATA_DIR`` | ``data/`` beside the online snapshot | the data folder (its ``validated/`` history) |
| ``CRM_EVENT_LOG`` | ``DATA/eventlog.sqlite`` | the event log |
| ``CRM_PUSH_COOLDOWN_DAYS`` | ``14`` | a pushed item is not offered again for this long |
| ``CRM_EVENT_POLL_SECONDS`` | ``0.1`` | how often a worker reads the log for other workers' events |
| ``CRM_CHURN_REFRESH_SECONDS`` | ``2`` | how often touched customers' churn scores are recomputed (0: off) |
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
from serving.live import ChurnRefresher, LiveOverlay, refresh_as_of

if TYPE_CHECKING:
    from serving.schemas import PostedEvent
    from serving.state import LoadedState

logger = logging.getLogger("crm.serving.events")

DEFAULT_DATA_DIR = Path("out/demo/data")  # beside the default online snapshot, as `crm demo` lays them out
CATCH_UP_BATCH = 50_000  # events per read while an overlay is (re)built
GROUP_ROWS = 20_000  # at most this many rows of waiting requests are committed together
CHURN_REFRESH_SHARE = 0.1  # the most of a worker's time the churn refresh may take


class EventSettings(BaseModel):
    """Where the log is and how the overlay behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = DEFAULT_DATA_DIR
    event_log: Path | None = None  # None: DATA/eventlog.sqlite
    push_cooldown_days: float = Field(14.0, ge=0.0)
    event_poll_seconds: float = Field(0.1, gt=0.0)
    churn_refresh_seconds: float = Field(2.0, ge=0.0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EventSettings:
        """The settings from ``CRM_*`` variables."""
        env = os.environ if environ is None else environ
        names = ("data_dir", "event_log", "push_cooldown_days", "event_poll_seconds", "churn_refresh_seconds")
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


def posted_frame(events: Sequence[PostedEvent]) -> pd.DataFrame:
    """Posted events as a frame of the contract's columns (text timestamps) and ``event_id``."""
    return pd.DataFrame(
        {
            "customer_id": [e.customer_id for e in events],
            "ts": [e.ts for e in events],
            "event_type": [e.event_type for e in events],
            "item_id": [e.item_id for e in events],
            "quantity": pd.array([e.quantity for e in events], dtype="Int64"),
            "amount": pd.array([e.amount for e in events], dtype="float64"),
            "channel": [e.channel for e in events],
            "event_id": [e.event_id for e in events],
        }
    )


class EventFeed:
    """This worker's side of the online path: accepting events and applying the log."""

    def __init__(self, settings: EventSettings, state: Callable[[], LoadedState | None]) -> None:
        self.settings = settings
        self._state = state
        self._log: EventLog | None = None
        self._log_lock = threading.Lock()
        self._commits: queue.Queue[tuple[pd.DataFrame, Future]] = queue.Queue()  # requests to log
        self._committer: threading.Thread | None = None
        self.overlay: LiveOverlay | None = None  # read by requests; replaced whole
        self._overlay_state: LoadedState | None = None  # the state the overlay's scores belong to
        self._pending: set[str] = set()  # customers whose churn score is to be recomputed
        self._pending_lock = threading.Lock()
        self._refresher: ChurnRefresher | None = None
        self._refresher_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

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
        self._commits.put((posted_frame(events), request))
        self._start_committer()
        return request.result()

    async def accept_async(self, events: Sequence[PostedEvent]) -> tuple[int, dict[str, Any]]:
        """:meth:`accept` for the event loop: it waits for the commit without holding a thread."""
        request: Future[tuple[int, dict[str, Any]]] = Future()
        self._commits.put((posted_frame(events), request))
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
        from features.contract import connect

        con = connect()
        con.execute("SET threads = 1")  # small batches: threads cost more than they give
        while True:
            group = [self._commits.get()]
            rows = len(group[0][0])
            while rows < GROUP_ROWS:
                try:
                    group.append(self._commits.get_nowait())
                except queue.Empty:
                    break
                rows += len(group[-1][0])
            try:
                answers = self._commit(con, [frame for frame, _ in group])
            except BaseException as exc:  # reported to every request of the group
                for _, request in group:
                    request.set_exception(exc)
                continue
            for (_, request), answer in zip(group, answers, strict=True):
                request.set_result(answer)
            self._wake.set()  # this worker applies its own events at once

    def _commit(self, con: Any, frames: list[pd.DataFrame]) -> list[tuple[int, dict[str, Any]]]:
        """Check and append the rows of several requests at once; one answer per request."""
        from features.contract import ContractError, check_rows

        batch = pd.concat(
            [f.assign(_request=i, _position=range(len(f))) for i, f in enumerate(frames)], ignore_index=True
        )
        try:
            checked = check_rows(batch, con=con)
        except (ContractError, duckdb.Error) as exc:
            if len(frames) > 1:  # one request's bad column must not fail the others
                return [answer for f in frames for answer in self._commit(con, [f])]
            return [(400, {"error": str(exc), "field": "events"})]
        try:
            appended = self.event_log().append(checked.clean)
        except (sqlite3.Error, OSError) as exc:
            logger.error("the event log %s could not be written: %s", self.settings.log_path, exc)
            failed = {"error": f"The event log could not be written ({exc}); nothing was accepted."}
            return [(503, failed)] * len(frames)
        rejected: list[dict[int, str]] = [{} for _ in frames]
        for request, position, reason in checked.rejected[["_request", "_position", "reason"]].itertuples(
            index=False
        ):
            rejected[request][int(position)] = str(reason)
        clean = checked.clean[["_request", "_position"]].to_numpy(dtype=np.int64).reshape(-1, 2)
        accepted = np.bincount(clean[:, 0], minlength=len(frames))
        for row in appended.duplicates:  # logged before: a duplicate, as the files' rule says
            request, position = clean[row]
            rejected[request][int(position)] = "duplicate"
            accepted[request] -= 1
        return [
            (200, {"accepted": int(accepted[i]),
                   "rejected": [{"index": p, "reason": rejected[i][p]} for p in sorted(rejected[i])]})
            for i in range(len(frames))
        ]  # fmt: skip

    # -- applying ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads that apply the log and refresh the touched customers' churn scores."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="crm-event-feed", daemon=True)
            self._thread.start()
            if self.settings.churn_refresh_seconds > 0:
                threading.Thread(target=self._refresh_loop, name="crm-churn-refresh", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _refresh_loop(self) -> None:
        """Recompute the pending customers' scores every ``churn_refresh_seconds``, and never for more
        than ``CHURN_REFRESH_SHARE`` of the time (a slow refresh waits longer before the next)."""
        wait = self.settings.churn_refresh_seconds
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self.refresh_scores()
            except Exception as exc:  # a failed refresh keeps the last scores; the error is reported
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("refreshing the churn scores failed")
            elapsed = time.monotonic() - started
            wait = max(self.settings.churn_refresh_seconds, elapsed / CHURN_REFRESH_SHARE - elapsed)

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

    def _touch(self, customers: set[str]) -> None:
        with self._pending_lock:
            self._pending |= customers

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

    def refresh_scores(self) -> int:
        """Recompute the churn scores of the customers touched since the last refresh (the feature
        SQL over their history, as of the overlay's clock); returns how many were recomputed."""
        overlay, state, refresher = self.overlay, self._overlay_state, self._churn_refresher()
        with self._pending_lock:
            customers, self._pending = sorted(self._pending), set()
        if not customers or overlay is None or state is None or refresher is None:
            return 0
        try:
            scores = refresher.scores(state, customers, refresh_as_of(overlay.clock))
        except BaseException:
            self._touch(set(customers))  # tried again at the next refresh
            raise
        if self.overlay is overlay and self._overlay_state is state:  # else a rebuild rescores them
            overlay.scores = {**overlay.scores, **scores}  # one reference swap
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
            "event_feed_error": self.last_error,
        }
