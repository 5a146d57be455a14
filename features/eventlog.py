"""The durable event log: every event ``POST /events`` accepted, on disk before the answer.

The store is SQLite (the standard library's ``sqlite3``) in WAL mode with ``synchronous=FULL``:

- **embedded**: one file (``DATA/eventlog.sqlite`` by default) beside the data folder; no server to
  run, and every job and worker opens it with the standard library;
- **fsync on commit**: with ``synchronous=FULL`` a commit returns only once the write-ahead log is
  fsynced, so :meth:`EventLog.append` returns after the events are on disk. They survive
  ``kill -9`` of the writer (the committed WAL frames are in the file) and a power cut (they were
  synced; the next open replays the WAL). WAL's usual ``NORMAL`` would keep ``kill -9`` safe but
  could lose the last commits to a power cut;
- **several writer processes**: every service worker opens the same file. SQLite's file lock lets
  one transaction write at a time (``BEGIN IMMEDIATE`` takes it, the connection's timeout waits
  for it), while readers go on reading the last committed state (in WAL mode readers and the writer
  do not block each other). WAL needs the processes on one host (shared memory), not on a network
  file system;
- **ordered**: ``seq`` is given inside the write transaction and transactions commit one at a
  time, so a reader that has seen ``seq = n`` never later finds a new event below ``n``:
  ``read_since(n)`` misses nothing.

DuckDB was the other embedded candidate; one process at a time may open a database file for
writing, which rules out several workers appending at once.

Idempotency: each row has a ``dedup_key`` under a unique index. With an ``event_id`` the key is
that id, so a retried batch is not written twice (and is acknowledged again); without one the key
is a hash of the contract's event columns, so an exact duplicate of a logged event is dropped.

Readers take events through :class:`EventSource`, a protocol a Kafka consumer can implement too:

========================  ============================================================================
EventSource               Kafka (kafka-python or confluent-kafka; not a dependency here)
========================  ============================================================================
the log                   a topic, keyed by ``customer_id`` (a customer's events stay in order in one
                          partition); producers with ``acks=all`` and idempotence on, so the 2xx
                          follows the brokers' acknowledgement as it follows the fsync here
offset                    the consumer's position: the offset of the next record per partition (a
                          tuple of per-partition offsets for a topic with several partitions); the
                          caller only keeps and passes back what the source returned
``read_since(offset)``    ``assign()`` every partition (no consumer group: every worker reads every
                          event), ``seek()`` to the offset, ``poll()``; the new offset is
                          ``position()``
``offset_at(time)``       ``offsets_for_times()``: where to start replaying from a snapshot's as-of
``event_id``              the record's key for deduplication where events are folded into Parquet
========================  ============================================================================
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

EVENT_LOG_NAME = "eventlog.sqlite"  # the log's file in a data folder
# the contract's event columns (features.contract.EVENTS) in their order, and the optional id
EVENT_COLUMNS = ("customer_id", "ts", "event_type", "item_id", "quantity", "amount", "channel")
READ_LIMIT = 10_000  # events per read_since by default
LOCK_TIMEOUT_SECONDS = 30.0  # how long a writer waits for another's transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the offset, never reused
  dedup_key TEXT NOT NULL,
  event_id TEXT,
  customer_id TEXT NOT NULL,
  ts_us INTEGER NOT NULL,                 -- event time, microseconds since 1970 (UTC)
  event_type TEXT NOT NULL,
  item_id TEXT,
  quantity INTEGER,
  amount REAL,
  channel TEXT,
  received_us INTEGER NOT NULL            -- when the log accepted it, microseconds since 1970
);
CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events (dedup_key);
CREATE INDEX IF NOT EXISTS events_customer ON events (customer_id);
CREATE INDEX IF NOT EXISTS events_received ON events (received_us);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_READ_COLUMNS = "seq, event_id, customer_id, ts_us, event_type, item_id, quantity, amount, channel"

Offset = TypeVar("Offset")


class EventSource(Protocol[Offset]):
    """Where a consumer reads accepted events from, in order (see the module's Kafka mapping)."""

    def read_since(self, offset: Offset, limit: int = READ_LIMIT) -> tuple[pd.DataFrame, Offset]:
        """Up to ``limit`` events after ``offset``, oldest first, and the offset to read from next.

        The frame has the contract's event columns (``ts`` a naive UTC ``datetime64``) and
        ``event_id``; an empty frame and the same offset when there is nothing new.
        """
        ...

    def offset_at(self, when: datetime) -> Offset:
        """An offset before every event accepted at or after ``when`` (UTC)."""
        ...


@dataclass(frozen=True)
class Appended:
    """What :meth:`EventLog.append` did with a batch."""

    accepted: int  # rows now in the log: written by this call, or already there under their event_id
    written: int  # rows this call wrote
    duplicates: list[int] = field(default_factory=list)  # positions of rows without an id already logged
    offset: int = 0  # the log's last offset after the commit


def _micros(ts: pd.Series) -> np.ndarray:
    """Naive UTC timestamps as microseconds since 1970."""
    return ts.astype("datetime64[us]").to_numpy().astype("int64")


def _now_us() -> int:
    return time.time_ns() // 1000


def _column(events: pd.DataFrame, name: str) -> list:
    """A column as Python values, None for every kind of missing value (NaN, NA, NaT)."""
    if name not in events:
        return [None] * len(events)
    column = events[name]
    values = column.astype(object).where(column.notna(), None).tolist()
    return [int(v) if isinstance(v, np.integer) else v for v in values] if name == "quantity" else values


def _dedup_keys(event_ids: list, rows: list[tuple]) -> list[str]:
    """``id:EVENT_ID`` where the event has an id, else ``row:`` and a hash of its contract columns
    (``rows``: customer, ts in microseconds, type, item, quantity, amount, channel)."""
    return [
        "id:" + event_id
        if event_id
        else "row:" + hashlib.blake2b(repr(row).encode(), digest_size=16).hexdigest()
        for event_id, row in zip(event_ids, rows, strict=True)
    ]


class EventLog:
    """The SQLite event log at ``path`` (created on first open); safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")  # one writer creates it
        self._reader = self._connect()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        con.execute("PRAGMA journal_mode = WAL")  # kept in the file; a no-op once set
        con.execute("PRAGMA synchronous = FULL")  # per connection: fsync the WAL at every commit
        return con

    def close(self) -> None:
        """Close both connections (committed events are on disk already)."""
        with self._write_lock, self._read_lock:
            self._writer.close()
            self._reader.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def append(self, events: pd.DataFrame) -> Appended:
        """Write validated events (the contract's event columns, optional ``event_id``) in one
        transaction; return once it is committed, that is fsynced.

        A row whose ``event_id`` is already logged counts as accepted and is not written again; a
        row without one that equals a logged event in every contract column is a duplicate (its
        position is listed) and is not written.
        """
        if events.empty:
            return Appended(0, 0, [], self.last_offset())
        ts_us = [int(t) for t in _micros(events["ts"])]
        customer, event_type, item, quantity, amount, channel = (
            _column(events, c) for c in EVENT_COLUMNS if c != "ts"
        )
        rows = list(zip(customer, ts_us, event_type, item, quantity, amount, channel, strict=True))
        event_ids = _column(events, "event_id")
        keys = _dedup_keys(event_ids, rows)
        with self._write_lock:
            con = self._writer
            con.execute("BEGIN IMMEDIATE")
            try:
                received = _now_us()  # inside the lock: accepted times rise with the offset
                logged = self._logged(con, keys)
                new, duplicates, accepted, seen = [], [], 0, set()
                for i, key in enumerate(keys):
                    if key in logged or key in seen:
                        if event_ids[i]:
                            accepted += 1  # a retry: acknowledged again, not written again
                        else:
                            duplicates.append(i)
                        continue
                    seen.add(key)
                    accepted += 1
                    new.append((key, event_ids[i], *rows[i], received))
                con.executemany(
                    "INSERT INTO events (dedup_key, event_id, customer_id, ts_us, event_type, item_id,"
                    " quantity, amount, channel, received_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    new,
                )
                offset = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return Appended(accepted, len(new), duplicates, int(offset))

    @staticmethod
    def _logged(con: sqlite3.Connection, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` that the log already holds."""
        found = con.execute(
            "SELECT dedup_key FROM events WHERE dedup_key IN (SELECT value FROM json_each(?))",
            (json.dumps(list(keys)),),
        ).fetchall()
        return {k for (k,) in found}

    # -- reading ------------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def read_since(self, offset: int, limit: int = READ_LIMIT) -> tuple[pd.DataFrame, int]:
        """Up to ``limit`` events with ``seq > offset``, oldest first, and the last ``seq`` read."""
        rows = self._query(
            f"SELECT {_READ_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(offset), int(limit)),
        )
        frame = _frame(rows)
        return frame, int(frame["seq"].iloc[-1]) if len(frame) else int(offset)

    def offset_at(self, when: datetime) -> int:
        """The last offset accepted before ``when``: reading from it replays everything accepted since."""
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        us = int((when - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
        (seq,) = self._query("SELECT coalesce(max(seq), 0) FROM events WHERE received_us < ?", (us,))[0]
        return int(seq)

    def last_offset(self) -> int:
        """The offset of the newest event (0 for an empty log)."""
        return int(self._query("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    def count(self) -> int:
        """How many events the log holds."""
        return int(self._query("SELECT count(*) FROM events")[0][0])

    def events_of(self, customer_ids: Iterable[str], after: int = 0) -> pd.DataFrame:
        """Every event of ``customer_ids`` with ``seq > after`` (the history the churn refresh reads)."""
        rows = self._query(
            f"SELECT {_READ_COLUMNS} FROM events WHERE seq > ?"
            " AND customer_id IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (int(after), json.dumps(sorted(set(customer_ids)))),
        )
        return _frame(rows)

    # -- compaction ---------------------------------------------------------------------------

    def compacted_through(self) -> int:
        """The last offset folded into the data folder's Parquet events (0: none)."""
        rows = self._query("SELECT value FROM meta WHERE key = 'compacted_through'")
        return int(rows[0][0]) if rows else 0

    def mark_compacted(self, offset: int) -> None:
        """Record that every event up to ``offset`` is in the data folder's events now."""
        with self._write_lock:
            self._writer.execute(
                "INSERT INTO meta (key, value) VALUES ('compacted_through', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(int(offset)),),
            )


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Log rows (``_READ_COLUMNS``) as a frame: ``seq``, ``event_id`` and the contract's event
    columns. Built column by column with their dtypes (a row-wise frame and its conversions cost
    ten times more, and the feed reads the log ten times a second)."""
    if not rows:  # what a poll of an idle log reads
        return _empty_frame().copy()
    return _columns_frame(tuple(zip(*rows, strict=True)), len(rows))


@functools.cache
def _empty_frame() -> pd.DataFrame:
    return _columns_frame(((),) * 9, 0)


def _columns_frame(columns: tuple, n: int) -> pd.DataFrame:
    seq, event_id, customer, ts_us, event_type, item, quantity, amount, channel = columns

    def text(values: tuple) -> Any:  # as a row-wise frame infers it: str; object when all missing
        return pd.Series(values, dtype=object) if not n else pd.Series(values)

    return pd.DataFrame(
        {
            "seq": np.fromiter(seq, dtype=np.int64, count=n),
            "event_id": text(event_id),
            "customer_id": text(customer),
            "ts": np.fromiter(ts_us, dtype=np.int64, count=n).view("datetime64[us]"),
            "event_type": text(event_type),
            "item_id": text(item),
            "quantity": pd.array(list(quantity), dtype="Int64"),
            "amount": np.array(amount, dtype=np.float64),
            "channel": text(channel),
        }
    )


# ---------------------------------------------------------------------------------------------
# the batch side: the log beside the data folder, and folding it into Parquet

# the schema of the data folder's event parts (the simulator's), which a compacted part copies
PART_PREFIX = "eventlog-"


def _after(log: EventLog, start: int, through: int | None = None) -> pd.DataFrame:
    """Every event with ``start < seq <= through`` (to the end of the log when ``through`` is None)."""
    pages, offset = [], start
    while True:
        page, offset = log.read_since(offset)
        if page.empty:
            break
        if through is not None:
            page = page[page["seq"] <= through]
        pages.append(page)
        if through is not None and offset >= through:
            break
    return pd.concat(pages, ignore_index=True) if pages else _frame([])


def uncompacted_events(data_dir: str | Path) -> pd.DataFrame:
    """The events of ``DATA/eventlog.sqlite`` not yet folded into the data folder (an empty frame
    without a log)."""
    path = Path(data_dir) / EVENT_LOG_NAME
    if not path.is_file():
        return _frame([])
    with EventLog(path) as log:
        return _after(log, log.compacted_through())


def with_event_log(con, data_dir: str | Path, events_sql: str) -> str:
    """The events relation of a batch job: ``events_sql`` (the validated files) and the log's
    events not yet compacted (copied into the temporary table ``eventlog_events``)."""
    fresh = uncompacted_events(data_dir)
    if fresh.empty:
        return events_sql
    columns = ", ".join(EVENT_COLUMNS)
    con.register("_eventlog_frame", fresh[list(EVENT_COLUMNS)])
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE eventlog_events AS SELECT CAST(customer_id AS VARCHAR) AS"
            " customer_id, CAST(ts AS TIMESTAMP) AS ts, CAST(event_type AS VARCHAR) AS event_type,"
            " CAST(item_id AS VARCHAR) AS item_id, CAST(quantity AS BIGINT) AS quantity,"
            " CAST(amount AS DOUBLE) AS amount, CAST(channel AS VARCHAR) AS channel FROM _eventlog_frame"
        )
    finally:
        con.unregister("_eventlog_frame")
    return f"SELECT {columns} FROM ({events_sql}) UNION ALL SELECT {columns} FROM eventlog_events"
