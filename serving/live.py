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

import logging
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
        scores, _ = score_snapshot(state.churn, frame, state.value_model)
        return scores


def refresh_as_of(clock: datetime) -> datetime:
    """The as-of of a refresh: the second after the overlay's clock, so its newest event counts
    (snapshot SQL compares timestamps to the second)."""
    return clock.replace(microsecond=0) + timedelta(seconds=1)
