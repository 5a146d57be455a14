"""Snapshot build time against the scan floor on the same events. JSON on stdout.

    python -m bench.features [--events 20000000] [--customers 1000000] [--repeats 3] [--data DIR]

Without ``--data`` it writes a synthetic events table of the requested size (numpy, seeded) with
every event type, channels, items and customers, so the snapshot does all its work. In the same
process and on the same Parquet it times (median of repeats):

- the scan floor: ``SELECT customer_id, count(*) FROM events GROUP BY customer_id``;
- the full snapshot (every feature family) at one as-of date, written to Parquet as
  ``crm features build`` does (``snapshot_seconds``);
- the same snapshot fetched as a pandas DataFrame instead, as training reads it in process
  (``dataframe_seconds``, for comparison: the conversion to Python objects is most of it);
- where the time goes: the scan alone (the columns the snapshot reads, no grouping:
  ``scan_seconds``) and the one pass of windowed aggregates over the events alone, without the
  purchases-by-category join, the customers table or the ordering (``events_pass_seconds``).

Peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import _connect, sql_string
from features.families import DUCKDB, coded_events_sql, window_aggregates
from features.query import as_datetime
from features.snapshot import build_snapshot, write_snapshot
from features.vocab import CATEGORIES, CHANNELS, EVENT_TYPES, MEMBER_TIERS

AS_OF = "2025-12-01"
Rounds = dict[str, list[float]]  # seconds of each round, by what was timed


def write_synthetic(folder: Path, n_events: int, n_customers: int, seed: int = 0) -> None:
    """Events spread over two years, written in row groups; customers and items tables."""
    rng = np.random.default_rng(seed)
    (folder / "events").mkdir(parents=True)
    n_items = 5000
    type_p = np.array([0.44, 0.1, 0.1, 0.004, 0.23, 0.03, 0.02, 0.03, 0.05])
    type_p = np.pad(type_p, (0, len(EVENT_TYPES) - len(type_p)))  # no marketing exposures
    start = np.datetime64("2024-01-01T00:00:00", "us")
    chunk = 5_000_000
    for k, lo in enumerate(range(0, n_events, chunk)):
        n = min(chunk, n_events - lo)
        types = rng.choice(len(EVENT_TYPES), n, p=type_p / type_p.sum())
        has_item = np.isin(types, [0, 1, 2, 3])
        item = rng.integers(0, n_items, n)
        table = pa.table(
            {
                "customer_id": pa.array(np.char.add("C", rng.integers(0, n_customers, n).astype(str))),
                "ts": start + rng.integers(0, 730 * 86_400_000_000, n).astype("timedelta64[us]"),
                "event_type": pa.array(np.array(EVENT_TYPES)[types]),
                "item_id": pa.array(np.char.add("I", item.astype(str)), mask=~has_item),
                "quantity": pa.array(np.ones(n, dtype=np.int64), mask=~has_item),
                "amount": pa.array(rng.uniform(5, 900, n), mask=~np.isin(types, [2, 3])),
                "channel": pa.array(np.array(CHANNELS)[rng.integers(0, len(CHANNELS), n)]),
            }
        )  # fmt: skip
        pq.write_table(table, folder / "events" / f"part-{k:03d}.parquet")
    cats = np.array(CATEGORIES)
    pq.write_table(
        pa.table(
            {
                "item_id": np.char.add("I", np.arange(n_items).astype(str)),
                "category": cats[rng.integers(0, len(cats), n_items)],
                "subcategory": np.full(n_items, "x"),
                "price": rng.uniform(5, 900, n_items),
                "launch_date": np.full(n_items, np.datetime64("2023-01-01", "us")),
                "active": np.ones(n_items, dtype=bool),
            }
        ),
        folder / "items.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "customer_id": np.char.add("C", np.arange(n_customers).astype(str)),
                "signup_ts": np.full(n_customers, np.datetime64("2022-01-01", "us")),
                "birth_year": rng.integers(1955, 2007, n_customers),
                "gender": np.array(["f", "m"])[rng.integers(0, 2, n_customers)],
                "region": np.array(["east", "south", "north"])[rng.integers(0, 3, n_customers)],
                "member_tier": np.array(MEMBER_TIERS)[rng.integers(0, len(MEMBER_TIERS), n_customers)],
                "points_balance": rng.uniform(0, 5000, n_customers),
            }
        ),
        folder / "customers.parquet",
    )


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """Views events, customers and items over a contract folder (raw or validated events)."""
    con = _connect()
    events = folder / "events" if (folder / "events").is_dir() else folder / "validated" / "events.parquet"
    pattern = f"{events}/*.parquet" if events.is_dir() else str(events)
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({sql_string(pattern)})")
    for table in ("customers", "items"):
        path = sql_string(folder / f"{table}.parquet")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({path})")
    return con


def timed(fn) -> float:
    """Seconds that ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reference_queries(tmp: Path) -> dict[str, str]:
    """The floor, the scan alone and the events pass, as SQL over the views."""
    aggregates = ", ".join(window_aggregates())
    return {
        "floor": "SELECT customer_id, count(*) FROM events GROUP BY customer_id",
        # expressions on every value, so no column is answered from the Parquet statistics
        "scan": (
            "SELECT sum(strlen(customer_id)), sum(strlen(event_type)), sum(strlen(channel)),"
            " sum(amount), max(epoch_us(ts) % 1000003) FROM events"
        ),
        "events pass": (
            f"COPY (SELECT customer_id, {aggregates} FROM ({coded_events_sql(as_datetime(AS_OF), DUCKDB)})"
            f" GROUP BY customer_id) TO {sql_string(tmp / 'pass.parquet')} (FORMAT parquet)"
        ),
    }


def time_rounds(con: duckdb.DuckDBPyConnection, tmp: Path, repeats: int) -> tuple[Rounds, int]:
    """Each round times the reference queries, the snapshot to Parquet and as a DataFrame, back
    to back; returns the seconds of every round by name and the snapshot's rows."""
    queries = reference_queries(tmp)
    times: Rounds = {name: [] for name in (*queries, "snapshot", "as a DataFrame")}
    rows, out = 0, tmp / "snapshot.parquet"
    for _ in range(repeats):
        for name, sql in queries.items():
            times[name].append(timed(lambda sql=sql: con.execute(sql).fetchall()))
        start = time.perf_counter()
        rows = write_snapshot(con, AS_OF, out)
        times["snapshot"].append(time.perf_counter() - start)
        times["as a DataFrame"].append(timed(lambda: build_snapshot(con, AS_OF)))
        print(", ".join(f"{name} {seconds[-1]:.2f} s" for name, seconds in times.items()), file=sys.stderr)
    return times, rows


def summary(n_events: int, rows: int, repeats: int, times: Rounds, load_before: float) -> dict:
    """The JSON report: medians, ratios to the floor, every round, and the machine's state."""
    floors, snaps, frames = times["floor"], times["snapshot"], times["as a DataFrame"]
    floor, snap, frame = statistics.median(floors), statistics.median(snaps), statistics.median(frames)
    passes = statistics.median(times["events pass"])
    return {
        "benchmark": "features",
        "events": n_events,
        "customers_in_snapshot": rows,
        "as_of": AS_OF,
        "repeats": repeats,
        "scan_floor_seconds_median": round(floor, 3),
        "snapshot_seconds_median": round(snap, 3),
        # each round times the floor and the snapshot back to back; on a shared machine a busy
        # spell can slow one round's floor alone, and a ratio of medians taken from different
        # rounds then passes or fails by chance: the median of the rounds' ratios is the figure
        # to read
        "ratio_snapshot_to_floor": round(statistics.median(map(operator.truediv, snaps, floors)), 2),
        "ratio_of_medians_snapshot_to_floor": round(snap / floor, 2),
        "dataframe_seconds_median": round(frame, 3),
        "ratio_dataframe_to_floor": round(frame / floor, 2),
        "scan_seconds_median": round(statistics.median(times["scan"]), 3),
        "events_pass_seconds_median": round(passes, 3),
        "events_pass_aggregates": len(window_aggregates()),
        "ratio_events_pass_to_floor": round(passes / floor, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "all_floor_seconds": [round(x, 3) for x in floors],
        "all_snapshot_seconds": [round(x, 3) for x in snaps],
        "all_dataframe_seconds": [round(x, 3) for x in frames],
        # the machine is shared: a busy one stretches the longer query more than the floor
        "cpu_count": os.cpu_count(),
        "load_avg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, help="an existing contract folder instead of synthetic events")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data
        if folder is None:
            folder = Path(tmp) / "data"
            gen = timed(lambda: write_synthetic(folder, args.events, args.customers))
            print(f"generated {args.events:,} events in {gen:.1f} s", file=sys.stderr)
        con = connect(folder)
        n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        times, rows = time_rounds(con, Path(tmp), args.repeats)
    print(json.dumps(summary(n_events, rows, args.repeats, times, load_before), indent=2))


if __name__ == "__main__":
    main()
