"""The durable event log: order, idempotent retries, duplicates, several writers, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from features.eventlog import EVENT_COLUMNS, EventLog

T0 = datetime(2025, 12, 29, 9, 0, 0)
ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, prefix: str = "C", with_ids: bool = True) -> pd.DataFrame:
    """``n`` validated purchase events (one per customer), with event ids when asked."""
    frame = pd.DataFrame(
        {
            "customer_id": [f"{prefix}{i:05d}" for i in range(n)],
            "ts": [T0 + timedelta(seconds=i) for i in range(n)],
            "event_type": ["purchase"] * n,
            "item_id": [f"I{i % 7}" for i in range(n)],
            "quantity": pd.array([1] * n, dtype="Int64"),
            "amount": [99.0 + i for i in range(n)],
            "channel": ["app"] * n,
        }
    )
    if with_ids:
        frame["event_id"] = [f"{prefix}-e{i}" for i in range(n)]
    return frame


@pytest.fixture()
def log(tmp_path: Path):
    with EventLog(tmp_path / "eventlog.sqlite") as opened:
        yield opened


def test_append_then_read_since_returns_the_events_in_order(log):
    batch = _events(5)
    appended = log.append(batch)
    assert (appended.accepted, appended.written, appended.duplicates) == (5, 5, [])
    events, offset = log.read_since(0)
    assert offset == appended.offset == log.last_offset()
    assert events["seq"].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        events[list(EVENT_COLUMNS)].reset_index(drop=True), batch[list(EVENT_COLUMNS)], check_dtype=False
    )
    again, same = log.read_since(offset)
    assert again.empty and same == offset


def test_read_since_keeps_missing_values_and_the_columns_dtypes(log):
    batch = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "ts": [T0, T0 + timedelta(microseconds=1)],
            "event_type": ["purchase", "app_open"],
            "item_id": ["I1", None],
            "quantity": pd.array([2, None], dtype="Int64"),
            "amount": [9.5, None],
            "channel": ["app", None],
            "event_id": ["e1", None],
        }
    )
    log.append(batch)
    events, offset = log.read_since(0)
    assert list(events.columns) == ["seq", "event_id", *EVENT_COLUMNS]
    assert events["seq"].dtype == "int64" and events["amount"].dtype == "float64"
    assert str(events["quantity"].dtype) == "Int64" and events["ts"].dtype.kind == "M"
    assert events["ts"].tolist() == batch["ts"].tolist()  # to the microsecond
    assert events.loc[0, ["customer_id", "item_id", "channel", "event_id"]].tolist() == [
        "C1",
        "I1",
        "app",
        "e1",
    ]
    assert events.loc[0, "quantity"] == 2 and events.loc[0, "amount"] == 9.5
    assert events.loc[1, ["item_id", "quantity", "amount", "channel", "event_id"]].isna().all()
    empty, same = log.read_since(offset)
    assert empty.empty and same == offset and list(empty.columns) == list(events.columns)
    dtypes = empty.dtypes
    empty["seq"] = empty["seq"].astype("float64")  # a copy: changing it leaves the next read alone
    assert log.read_since(offset)[0].dtypes.equals(dtypes)


def test_read_since_pages_through_the_log_without_gaps(log):
    log.append(_events(7))
    seen, offset = [], 0
    while True:
        page, offset = log.read_since(offset, limit=3)
        if page.empty:
            break
        seen.extend(page["seq"])
    assert seen == list(range(1, 8))


def test_a_retried_batch_with_event_ids_is_acknowledged_again_and_written_once(log):
    batch = _events(4)
    first = log.append(batch)
    retry = log.append(batch)
    assert retry.accepted == first.accepted == 4
    assert retry.written == 0 and retry.duplicates == []
    assert log.count() == 4


def test_an_exact_duplicate_without_an_id_is_dropped(log):
    batch = _events(3, with_ids=False)
    log.append(batch)
    again = log.append(
        pd.concat([batch.iloc[[1]], _events(1, prefix="N", with_ids=False)], ignore_index=True)
    )
    assert again.duplicates == [0]
    assert (again.accepted, again.written) == (1, 1)
    assert log.count() == 4


def test_offset_at_is_before_every_event_accepted_since(log):
    log.append(_events(2, prefix="A"))
    log.append(_events(2, prefix="B"))
    assert log.offset_at(datetime(2000, 1, 1)) == 0  # everything was accepted after 2000: replay it all
    assert log.offset_at(datetime(2100, 1, 1)) == log.last_offset() == 4


def test_events_of_returns_one_customers_history(log):
    log.append(_events(3, prefix="A"))
    log.append(_events(3, prefix="A").assign(event_id=None, event_type="view", quantity=pd.NA, amount=None))
    history = log.events_of(["A00001"])
    assert history["customer_id"].eq("A00001").all()
    assert sorted(history["event_type"]) == ["purchase", "view"]


WRITER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from features.eventlog import EventLog
    log = EventLog(sys.argv[1])
    prefix, batches = sys.argv[2], int(sys.argv[3])
    for b in range(batches):
        frame = pd.DataFrame({
            "customer_id": [f"{prefix}{b}-{i}" for i in range(10)],
            "ts": pd.Timestamp("2025-12-29 10:00:00"),
            "event_type": "purchase", "item_id": "I1", "quantity": 1, "amount": 5.0, "channel": "app",
            "event_id": [f"{prefix}{b}-{i}" for i in range(10)],
        })
        acked = log.append(frame)
        print(f"ack {acked.accepted}", flush=True)
    time.sleep(600)
    """
)


def _writer(path: Path, prefix: str, batches: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), prefix, str(batches)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_an_acknowledged_event_survives_kill_9_of_the_writer(tmp_path):
    path = tmp_path / "eventlog.sqlite"
    writer = _writer(path, "K", 1)
    try:
        line = writer.stdout.readline()  # the acknowledgement
        os.kill(writer.pid, signal.SIGKILL)  # right after it, before any clean shutdown
    finally:
        writer.kill()
        writer.wait()
    assert line.strip() == "ack 10"
    with EventLog(path) as reopened:
        assert reopened.count() == 10


def test_two_writer_processes_append_to_one_log(tmp_path):
    path = tmp_path / "eventlog.sqlite"
    EventLog(path).close()  # created once, so both writers open an existing WAL database
    writers = [_writer(path, prefix, 20) for prefix in ("P", "Q")]
    try:
        acks = [sum(int(w.stdout.readline().split()[1]) for _ in range(20)) for w in writers]
    finally:
        for w in writers:
            w.kill()
            w.wait()
    with EventLog(path) as log:
        events, _ = log.read_since(0)
    assert sum(acks) == len(events) == 400
    assert events["seq"].is_unique and events["event_id"].is_unique


# --- the checks shared with `crm data validate` ----------------------------------------------------

REFERENCE = datetime(2026, 1, 1)


def _bad_batch() -> pd.DataFrame:
    """One row per event reject reason (and two clean rows), as posted: text timestamps."""
    rows = [
        ("C1", "2025-12-30T10:00:00Z", "purchase", "I1", 1, 10.0, "app"),  # clean
        (None, "2025-12-30T10:00:00Z", "view", "I1", None, None, None),  # null_customer_id
        ("C2", "not a time", "view", "I1", None, None, None),  # bad_timestamp
        ("C3", "2030-01-01T00:00:00Z", "view", "I1", None, None, None),  # future_timestamp
        ("C4", "2025-12-30T10:00:00Z", "teleport", "I1", None, None, None),  # unknown_event_type
        ("C5", "2025-12-30T10:00:00Z", "view", None, None, None, None),  # missing_item
        ("C6", "2025-12-30T10:00:00Z", "purchase", "I1", -1, None, None),  # negative_quantity
        ("C7", "2025-12-30T10:00:00Z", "view", "I1", None, None, "pigeon"),  # unknown_channel
        ("C1", "2025-12-30T10:00:00Z", "PURCHASE", "I1", 1, 10.0, "App"),  # duplicate (after lowering)
        ("C8", "2025-12-30T18:00:00+08:00", "view", "I2", None, None, "mall"),  # clean, an offset
        ("C\x079", "2025-12-30T10:00:00Z", "view", "I1", None, None, None),  # control_character_in_id
    ]
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["quantity"] = frame["quantity"].astype("Int64")
    return frame


def test_posted_rows_are_rejected_with_the_reasons_crm_data_validate_gives(tmp_path):
    from features.contract import REJECT_REASONS, check_rows, validate

    batch = _bad_batch()
    checked = check_rows(
        batch.assign(event_id=[f"e{i}" for i in range(len(batch))]), reference_time=REFERENCE
    )
    batch.to_parquet(tmp_path / "events.parquet")
    validate(tmp_path, max_reject_share=1.0, reference_time=REFERENCE, reuse=False)
    files = pd.read_parquet(tmp_path / "rejects" / "events.parquet")
    assert set(checked.rejected["reason"]) <= set(REJECT_REASONS["events"])

    def reasons(frame: pd.DataFrame) -> dict[str, str]:
        return dict(zip(frame["customer_id"].fillna("(none)"), frame["reason"], strict=True))

    assert reasons(checked.rejected) == reasons(files)


def test_check_rows_keeps_positions_extra_columns_and_the_first_of_duplicates():
    from features.contract import check_rows

    batch = _bad_batch().assign(event_id=[f"e{i}" for i in range(11)])
    checked = check_rows(batch, reference_time=REFERENCE)
    assert list(checked.clean.index) == [0, 9]  # the first of the duplicate pair is the one kept
    assert list(checked.rejected.index) == [*range(1, 9), 10]
    assert checked.rejected.loc[8, "reason"] == "duplicate"
    assert list(checked.clean["event_id"]) == ["e0", "e9"]
    assert checked.clean.loc[9, "ts"] == pd.Timestamp("2025-12-30 10:00:00")  # +08:00 read as UTC
    assert checked.clean.loc[0, "event_type"] == "purchase"


# --- the batch side: jobs read the log with the folder; compaction folds it in once ----------------


def test_batch_jobs_see_logged_events_and_compaction_folds_them_in_once(tiny_data_copy):
    from features.compaction import compact
    from features.contract import open_validated
    from features.eventlog import EVENT_LOG_NAME
    from features.snapshot import build_snapshot

    data = tiny_data_copy
    con = open_validated(data)
    end = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    customer = con.execute("SELECT min(customer_id) FROM events").fetchone()[0]
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    as_of = end + timedelta(days=2)

    def purchases(connection) -> int:
        row = build_snapshot(connection, as_of).set_index("customer_id").loc[customer]
        return int(row["purchases_total"])

    bought = purchases(con)
    logged = _events(3, prefix="LOG").assign(
        customer_id=[customer, "LOG1", "LOG2"], ts=end + timedelta(hours=1)
    )
    with EventLog(data / EVENT_LOG_NAME) as log:
        log.append(logged)

    with_log = open_validated(data)
    assert with_log.execute("SELECT count(*) FROM events").fetchone()[0] == before + 3
    assert purchases(with_log) == bought + 1  # `crm features build` counts the logged purchase

    folded = compact(data)
    assert folded.events == 3 and folded.path.parent == data / "events" and folded.through == 3
    compacted = open_validated(data)
    assert compacted.execute("SELECT count(*) FROM events").fetchone()[0] == before + 3  # once, not twice
    assert purchases(compacted) == bought + 1
    again = compact(data)
    assert (again.events, again.path, again.through) == (0, None, 3)


def test_compaction_after_a_crash_before_the_mark_does_not_fold_twice(tiny_data_copy):
    from features.compaction import compact
    from features.eventlog import EVENT_LOG_NAME

    with EventLog(tiny_data_copy / EVENT_LOG_NAME) as log:
        log.append(_events(4, prefix="CR"))
    first = compact(tiny_data_copy)
    with EventLog(tiny_data_copy / EVENT_LOG_NAME) as log:
        log.mark_compacted(0)  # as if the process died between writing the part and the mark
        log.append(_events(2, prefix="CS"))
    second = compact(tiny_data_copy)
    assert (first.through, second.events, second.through) == (4, 2, 6)
    parts = sorted(p.name for p in (tiny_data_copy / "events").glob("eventlog-*.parquet"))
    assert len(parts) == 2


def test_compaction_needs_an_events_folder(tmp_path):
    from features.compaction import compact
    from features.contract import ContractError
    from features.eventlog import EVENT_LOG_NAME

    _events(2).drop(columns="event_id").to_parquet(tmp_path / "events.parquet")
    EventLog(tmp_path / EVENT_LOG_NAME).close()
    with pytest.raises(ContractError, match="folder of Parquet files"):
        compact(tmp_path)
