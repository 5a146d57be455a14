"""A worker's live overlay: what the event log says happened since the online snapshot's as-of.

The online snapshot changes only at a reload; the overlay holds, per customer touched since, what
the answers must reflect at once:

- ``owned``: items bought since (never offered again while ``exclude_owned``);
- ``recent``: those purchases, newest first, which come before the snapshot's recent items in the
  customer tower's recent-items mean (and in the category intent's newest purchases);
- ``pushed``: items sent in a ``push_sent`` event, not offered for the push cool-down;
- ``last_event`` and ``last_activity``;
- ``scores``: the churn score, reasons and lifecycle stage recomputed by the feature SQL over the
  customer's whole history (:class:`ChurnRefresher`).

The overlay's clock is event time: the newest event it has applied, and at least the snapshot's
as-of. The push cool-down is measured on it, so a replay of the log answers as the live service
did. Applying an event twice changes nothing (sets, maxima, a recomputation), which is what lets a
restarted worker replay from the snapshot's as-of without knowing exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.vocab import ACTIVITY_EVENT_TYPES

if TYPE_CHECKING:
    from features.eventlog import EventLog
    from serving.state import LoadedState

log = logging.getLogger(__name__)

RECENT_ITEMS = 10  # as many recent purchases as the online snapshot keeps (features.online)
_ACTIVITY = frozenset(ACTIVITY_EVENT_TYPES)


@dataclass(frozen=True)
class CustomerLive:
    """One customer's events since the snapshot; replaced whole, never changed (readers on other
    threads see the old record or the new one)."""

    owned: frozenset[str] = frozenset()
    recent: tuple[tuple[datetime, str], ...] = ()  # (ts, item) of purchases, newest first
    pushed: tuple[tuple[str, datetime], ...] = ()  # (item, last push ts)
    last_event: datetime | None = None
    last_activity: datetime | None = None

    @property
    def changes_lists(self) -> bool:
        """True when the default recommendation list no longer holds (a purchase or a push)."""
        return bool(self.owned or self.pushed)

    def merge(
        self, recent: np.ndarray, owned: np.ndarray, positions: Callable[[Iterable[str]], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The snapshot's recent and owned item positions with this customer's purchases since:
        the new ones first in ``recent`` (newest first, ``RECENT_ITEMS`` at most), added to ``owned``."""
        fresh = positions([item for _, item in self.recent]).tolist()
        merged = list(dict.fromkeys([*fresh, *np.asarray(recent).tolist()]))[:RECENT_ITEMS]
        bought = positions(sorted(self.owned))
        return np.asarray(merged, dtype=np.int64), np.union1d(owned, bought).astype(np.int64)

    def pushed_since(self, start: datetime) -> list[str]:
        """Items pushed at or after ``start``."""
        return [item for item, ts in self.pushed if ts >= start]


def _applied(record: CustomerLive, events: list[tuple[datetime, str, object]]) -> CustomerLive:
    """``record`` with one customer's new events (ts, type, item; any order) applied."""
    owned, recent, pushed = set(record.owned), dict((i, t) for t, i in record.recent), dict(record.pushed)
    last_event, last_activity = record.last_event, record.last_activity
    for ts, event_type, item in events:
        last_event = ts if last_event is None else max(last_event, ts)
        if event_type in _ACTIVITY:
            last_activity = ts if last_activity is None else max(last_activity, ts)
        if not isinstance(item, str):
            continue
        if event_type == "purchase":
            owned.add(item)
            recent[item] = max(ts, recent.get(item, ts))
        elif event_type == "push_sent":
            pushed[item] = max(ts, pushed.get(item, ts))
    newest = sorted(((t, i) for i, t in recent.items()), reverse=True)[:RECENT_ITEMS]
    return CustomerLive(frozenset(owned), tuple(newest), tuple(pushed.items()), last_event, last_activity)


@dataclass
class LiveOverlay:
    """The events since ``as_of`` applied, per customer, and the churn scores refreshed from them."""

    as_of: datetime  # the snapshot's as-of this overlay completes
    cooldown: timedelta  # how long a pushed item is not offered again
    offset: Any = 0  # where the next read of the event source starts
    clock: datetime | None = None  # event time: the newest event applied, at least as_of
    customers: dict[str, CustomerLive] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # refreshed /churn_score answers
    applied: int = 0  # events applied

    def __post_init__(self) -> None:
        self.clock = self.clock or self.as_of

    def apply(self, events: pd.DataFrame) -> set[str]:
        """Apply a batch read from the log; returns the customers it touched."""
        if events.empty:
            return set()
        by_customer: dict[str, list[tuple[datetime, str, object]]] = {}
        rows = zip(events["customer_id"].tolist(), events["ts"].tolist(), events["event_type"].tolist(),
                   events["item_id"].tolist(), strict=True)  # fmt: skip
        for customer, ts, event_type, item in rows:
            by_customer.setdefault(str(customer), []).append((ts, event_type, item))
        for customer, group in by_customer.items():
            record = self.customers.get(customer, CustomerLive())
            self.customers[customer] = _applied(record, group)  # one reference swap per customer
        self.clock = max(self.clock, pd.Timestamp(events["ts"].max()).to_pydatetime())
        self.applied += len(events)
        return set(by_customer)

    def get(self, customer_id: str) -> CustomerLive | None:
        """The customer's record, or None when the log has nothing new of them."""
        return self.customers.get(customer_id)

    def changes_lists(self, customer_id: str) -> bool:
        """True when the customer's precomputed default list is out of date."""
        record = self.customers.get(customer_id)
        return record is not None and record.changes_lists

    def blocked(self, customer_id: str) -> list[str]:
        """Items not to offer the customer now: those pushed within the cool-down."""
        record = self.customers.get(customer_id)
        return record.pushed_since(self.clock - self.cooldown) if record is not None else []

    def with_pushes(self, pushes: pd.DataFrame) -> LiveOverlay:
        """Seed the cool-down with pushes from before ``as_of`` (the snapshot does not keep them)."""
        for customer, group in pushes.groupby("customer_id", sort=False):
            record = self.customers.get(str(customer), CustomerLive())
            merged = dict(record.pushed)
            for item, ts in zip(group["item_id"], group["ts"], strict=True):
                ts = pd.Timestamp(ts).to_pydatetime()
                merged[item] = max(ts, merged.get(item, ts))
            self.customers[str(customer)] = CustomerLive(
                record.owned, record.recent, tuple(merged.items()), record.last_event, record.last_activity
            )
        return self


# ---------------------------------------------------------------------------------------------
# the churn refresh: the snapshot's feature SQL over the touched customers' whole history


class ChurnRefresher:
    """Recomputes the snapshot row, churn score, reasons and lifecycle stage of a few customers.

    The history of a customer is the data folder's validated events (``DATA/validated/``, which
    includes what ``crm events compact`` folded in) plus the log's events after its compaction
    mark; :func:`features.query.snapshot_sql` runs over only those customers' rows.
    """

    def __init__(self, data_dir: Path, event_log: EventLog) -> None:
        from features.contract import connect

        self.data_dir = Path(data_dir)
        self.log = event_log
        self.con = connect()
        self.con.execute("SET threads = 1")  # a background job beside the requests
        self._lock = threading.Lock()  # one DuckDB connection: one query at a time

    def _table_sql(self, table: str) -> str:
        from features.contract import TABLES, empty_table_sql

        path = self.data_dir / "validated" / f"{table}.parquet"
        if path.is_file():
            return f"SELECT * FROM read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
        return empty_table_sql(TABLES[table])

    def snapshot_rows(self, customer_ids: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """The snapshot of ``customer_ids`` as of ``as_of`` (one row each that has any history)."""

        with self._lock:
            return self._snapshot_rows(customer_ids, as_of)

    def _snapshot_rows(self, customer_ids: Sequence[str], as_of: datetime) -> pd.DataFrame:
        from features.eventlog import EVENT_COLUMNS
        from features.query import cast_snapshot, snapshot_sql

        con = self.con
        fresh = self.log.events_of(customer_ids, after=self.log.compacted_through())[list(EVENT_COLUMNS)]
        con.register("_touched", pd.DataFrame({"customer_id": list(customer_ids)}))
        con.register("_fresh", fresh)
        try:
            touched = "customer_id IN (SELECT customer_id FROM _touched)"
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW events AS SELECT {', '.join(EVENT_COLUMNS)} FROM"
                f" ({self._table_sql('events')}) WHERE {touched}"
                f" UNION ALL SELECT {', '.join(EVENT_COLUMNS)} FROM _fresh"
            )
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW customers AS SELECT * FROM ({self._table_sql('customers')})"
                f" WHERE {touched}"
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW items AS {self._table_sql('items')}")
            frame = con.execute(snapshot_sql(as_of)).df()
        finally:
            con.unregister("_touched")
            con.unregister("_fresh")
        return cast_snapshot(frame)

    def pushes_before(self, as_of: datetime, cooldown: timedelta) -> pd.DataFrame:
        """Pushes with an item in the cool-down before ``as_of`` (customer_id, item_id, ts)."""
        t, start = f"{as_of:%Y-%m-%d %H:%M:%S}", f"{as_of - cooldown:%Y-%m-%d %H:%M:%S}"
        with self._lock:
            return self.con.execute(
                f"SELECT customer_id, item_id, max(ts) AS ts FROM ({self._table_sql('events')})"
                f" WHERE event_type = 'push_sent' AND item_id IS NOT NULL"
                f" AND ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{t}' GROUP BY 1, 2"
            ).df()

    def scores(self, state: LoadedState, customer_ids: Sequence[str], as_of: datetime) -> dict[str, dict]:
        """The /churn_score answers of ``customer_ids`` recomputed as of ``as_of``."""
        from serving.state import score_snapshot

        frame = self.snapshot_rows(customer_ids, as_of)
        if frame.empty:
            return {}
        return score_snapshot(state.churn, frame, state.value_model)


# ---------------------------------------------------------------------------------------------
# helper processes of a worker: work that must not hold the worker's GIL beside its event loop

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when the worker that started it dies


class ChildFailed(RuntimeError):
    """The child process died, or gave no answer in time (it is started again at the next call)."""


class _Unsent(Exception):
    """A request could not be sent: the child had died (so it did nothing with it)."""


class ChildProcess:
    """A helper process of the worker, asked one request at a time over a socket.

    ``python -m MODULE FD ARGS...`` runs :func:`serve_child` on the socket ``FD``. The child ends
    with the worker: at :meth:`close`, when its end of the socket closes (the worker exited, even
    by ``kill -9``: it reads the end of the stream), and on Linux by ``PR_SET_PDEATHSIG``. One
    that died or stopped answering is started again by the next :meth:`ask`.
    """

    def __init__(self, module: str, args: Sequence[str], what: str, answer_seconds: float) -> None:
        self.module, self.args, self.what, self.answer_seconds = (
            module,
            [str(a) for a in args],
            what,
            answer_seconds,
        )
        self._lock = threading.Lock()  # one request in flight
        self._proc: Any = None
        self._conn: Any = None
        self._closed = False
        self.started = 0  # children started (1 unless one died)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child now rather than at the first request (its imports take seconds)."""
        with self._lock:
            try:
                self._ensure()
            except OSError as exc:
                raise ChildFailed(f"{self.what} could not start ({exc})") from exc

    def _ensure(self) -> None:
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        if self._closed:
            raise ChildFailed(f"{self.what} is stopped")
        if self._proc is not None and self._proc.poll() is None:
            return
        self._discard()
        parent, child = socket.socketpair()
        root = Path(__file__).resolve().parents[1]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", self.module, str(child.fileno()), *self.args]
        try:
            self._proc = subprocess.Popen(argv, env=env, cwd=root, pass_fds=(child.fileno(),))
        finally:
            child.close()
        self._conn = Connection(parent.detach())
        self.started += 1

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = self._conn = None

    def ask(self, kind: str, *args: Any, before: Callable[[int], None] | None = None) -> Any:
        """The child's answer to ``(kind, *args)``; ``before(started)`` runs first, under the same
        lock (what a new child must be told first). Raises :class:`ChildFailed` when the child
        died or gave no answer in ``answer_seconds``, and ``RuntimeError`` with the child's own
        error when the request failed there."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._ensure()
                    if before is not None:
                        before(self.started)
                    return self._ask(kind, args)
                except _Unsent:  # it died before this request reached it: once more, on a new child
                    self._discard()
                    if attempt == 2:
                        raise ChildFailed(f"{self.what} died twice before taking a request") from None
                except (OSError, EOFError, TimeoutError) as exc:
                    self._discard()  # started again at the next request
                    raise ChildFailed(f"{self.what} stopped answering ({type(exc).__name__}: {exc})") from exc
            raise AssertionError("unreachable")

    def ask_locked(self, kind: str, *args: Any) -> Any:
        """:meth:`ask` from inside ``before`` (the lock is held)."""
        return self._ask(kind, args)

    def _ask(self, kind: str, args: tuple) -> Any:
        try:
            self._conn.send((kind, *args))
        except OSError as exc:  # a broken pipe: nothing reached the child
            raise _Unsent from exc
        if not self._conn.poll(self.answer_seconds):
            raise TimeoutError(f"no answer in {self.answer_seconds:g} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.what} failed: {value}")
        return value

    def close(self) -> None:
        """Stop the child, at once: a request in flight fails."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()  # the waiting thread then reads the end of the socket
            proc.wait()
        if self._lock.acquire(timeout=5):
            try:
                self._discard()
            finally:
                self._lock.release()


def serve_child(fd: int, handlers: dict[str, Callable[..., Any]], niceness: int = 0) -> None:
    """A child's loop: ``(kind, *args)`` from the worker over the socket ``fd``, answered with
    ``("ok", handlers[kind](*args))`` or ``("error", text)``, until the socket closes."""
    import ctypes
    import signal
    import sys
    from multiprocessing.connection import Connection

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    conn = Connection(fd)
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        if kind == "stop":
            return
        try:
            answer = ("ok", handlers[kind](*args))
        except Exception as exc:  # reported to the worker
            log.exception("%s failed in the child process", kind)
            answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except OSError:
            return


# the churn refresh in a process of its own: off the worker's GIL and below its CPU priority

REFRESH_NICENESS = 10  # the child yields the CPU to the worker's requests (a tenth of the share)
REFRESH_ANSWER_SECONDS = 300.0  # a refresh not answered by then: the child is killed and restarted


class RefreshProcess:
    """:meth:`ChurnRefresher.scores` run in a child process (:class:`ChildProcess`) of the worker.

    Recomputing a few thousand customers' rows (DuckDB over their history), scores and reasons
    (LightGBM and Python per row) takes hundreds of milliseconds of CPU; on a worker's thread it
    held the GIL beside the event loop and stalled ``/recommend``. The child does all of it: it
    opens the data folder and the event log itself, and gets the churn and value models pickled
    once per loaded state (and per child); the worker's thread only sends the customer ids and
    the as-of and waits, without the GIL, for the JSON-ready answers. The child runs at a lower
    priority (``REFRESH_NICENESS``), so on a busy machine the requests get the CPU first.
    """

    def __init__(self, data_dir: Path, log_path: Path, niceness: int = REFRESH_NICENESS) -> None:
        self.child = ChildProcess(
            "serving.live",
            [data_dir, log_path, niceness],
            "the churn refresh process",
            REFRESH_ANSWER_SECONDS,
        )
        self._sent: tuple[int, Any, Any] | None = None  # (child, churn, value model) last sent

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def start(self) -> None:
        self.child.start()

    def close(self) -> None:
        self.child.close()

    def scores(self, state: LoadedState, customer_ids: Sequence[str], as_of: datetime) -> dict[str, dict]:
        """The /churn_score answers of ``customer_ids`` recomputed as of ``as_of``, by the child."""
        import pickle

        def send_models(started: int) -> None:  # a new state or a new child: the models, once
            sent = self._sent  # held, not only their ids: a new model cannot take an old one's id
            if (
                sent is None
                or sent[0] != started
                or sent[1] is not state.churn
                or sent[2] is not state.value_model
            ):
                blob = pickle.dumps((state.churn, state.value_model), protocol=pickle.HIGHEST_PROTOCOL)
                self.child.ask_locked("models", blob)
                self._sent = (started, state.churn, state.value_model)

        return self.child.ask("scores", list(customer_ids), as_of, before=send_models)


def _refresh_child(fd: int, data_dir: str, log_path: str, niceness: int) -> None:
    """The refresh child: the models once, then the scores of the customers asked for."""
    import pickle
    from types import SimpleNamespace

    from features.eventlog import EventLog

    held: dict[str, Any] = {}

    def models(blob: bytes) -> bool:
        churn, value_model = pickle.loads(blob)
        held["models"] = SimpleNamespace(churn=churn, value_model=value_model)
        return True

    def scores(customer_ids: list[str], as_of: datetime) -> dict[str, dict]:
        if "refresher" not in held:
            held["refresher"] = ChurnRefresher(Path(data_dir), EventLog(log_path))
        return held["refresher"].scores(held["models"], customer_ids, as_of)

    serve_child(fd, {"models": models, "scores": scores}, niceness)


def refresh_as_of(clock: datetime) -> datetime:
    """The as-of of a refresh: the second after the overlay's clock, so its newest event counts
    (snapshot SQL compares timestamps to the second)."""
    return clock.replace(microsecond=0) + timedelta(seconds=1)


if __name__ == "__main__":  # the churn refresh process (RefreshProcess)
    import sys

    logging.basicConfig(level=logging.WARNING)
    _refresh_child(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
