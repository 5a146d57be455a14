"""The input contract: every bad-row reason and every fatal error, through the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from features.contract import REJECT_REASONS, ContractError, open_validated, validate

REFERENCE = datetime(2026, 1, 1)


def good_events(n: int = 200) -> pd.DataFrame:
    """n clean events of 20 customers (purchases and app opens)."""
    return pd.DataFrame(
        {
            "customer_id": [f"C{i % 20:03d}" for i in range(n)],
            "ts": pd.date_range("2025-01-01", periods=n, freq="h"),
            "event_type": ["purchase" if i % 2 else "app_open" for i in range(n)],
            "item_id": [f"I{i % 7}" if i % 2 else None for i in range(n)],
            "quantity": [1 if i % 2 else None for i in range(n)],
            "amount": [99.0 if i % 2 else None for i in range(n)],
            "channel": ["mall" if i % 3 else "app" for i in range(n)],
        }
    )


# one bad row per reason, each built from a good purchase row
BAD_ROWS = {
    "null_customer_id": {"customer_id": None},
    "control_character_in_id": {"customer_id": "C0\x0001"},
    "bad_timestamp": {"ts": "not a time"},
    "future_timestamp": {"ts": "2030-05-01 10:00:00"},
    "unknown_event_type": {"event_type": "teleport"},
    "missing_item": {"event_type": "view", "item_id": None},
    # a marketing exposure says where it was shown: without a channel it cannot be measured
    "missing_channel": {"event_type": "ad_click", "channel": None},
    "negative_quantity": {"quantity": -2},
    "unknown_channel": {"channel": "carrier_pigeon"},
}


def write_csv(folder: Path, table: str, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    frame.to_csv(path, index=False)
    return path


def events_with_bad_rows() -> pd.DataFrame:
    events = good_events().astype({"ts": str})
    template = events.iloc[1].to_dict()
    bad = [template | change for change in BAD_ROWS.values()]
    duplicate = events.iloc[[3]]
    return pd.concat([events, pd.DataFrame(bad), duplicate], ignore_index=True)


def test_every_events_reason_is_covered_by_this_file():
    assert set(BAD_ROWS) | {"duplicate"} == set(REJECT_REASONS["events"])


def test_each_bad_row_goes_to_rejects_with_its_reason(tmp_path: Path):
    write_csv(tmp_path, "events", events_with_bad_rows())
    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.5)

    events = report.tables["events"]
    assert events.rejects == {reason: 1 for reason in REJECT_REASONS["events"]}
    assert events.rows_clean == 200
    rejects = pd.read_parquet(tmp_path / "rejects" / "events.parquet")
    assert sorted(rejects["reason"]) == sorted(REJECT_REASONS["events"])
    clean = pd.read_parquet(tmp_path / "validated" / "events.parquet")
    assert len(clean) == 200
    assert not clean.duplicated().any()
    assert rows_in_equal_clean_plus_rejects(events.rows_in, clean, rejects)


def rows_in_equal_clean_plus_rejects(rows_in: int, clean: pd.DataFrame, rejects: pd.DataFrame) -> bool:
    return rows_in == len(clean) + len(rejects)


def test_customers_and_items_rules(tmp_path: Path):
    write_csv(tmp_path, "events", good_events())
    customers = pd.DataFrame(
        {
            "customer_id": ["C001", "C002", None, "C002", "C003"],
            "member_tier": ["gold", "silver", "gold", "gold", "diamond"],
        }
    )
    items = pd.DataFrame({"item_id": ["I1", "I2", None, "I1"], "price": [10.0, -5.0, 3.0, 12.0]})
    write_csv(tmp_path, "customers", customers)
    write_csv(tmp_path, "items", items)
    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.9)
    assert report.tables["customers"].rejects == {
        "null_customer_id": 1,
        "duplicate_customer_id": 1,
        "unknown_member_tier": 1,
    }
    assert report.tables["items"].rejects == {"null_item_id": 1, "negative_price": 1, "duplicate_item_id": 1}


def test_ids_with_control_characters_are_rejected_in_every_table(tmp_path: Path):
    events = good_events()
    events.loc[3, "item_id"] = "I\x003"  # a NUL byte
    write_csv(tmp_path, "events", events)
    write_csv(tmp_path, "customers", pd.DataFrame({"customer_id": ["C001", "C\x00002", "C003\t"]}))
    write_csv(tmp_path, "items", pd.DataFrame({"item_id": ["I1", "I\x002"], "price": [10.0, 5.0]}))
    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.9)
    assert {name: t.rejects for name, t in report.tables.items()} == {
        "events": {"control_character_in_id": 1},
        "customers": {"control_character_in_id": 2},
        "items": {"control_character_in_id": 1},
    }
    clean = pd.read_parquet(tmp_path / "validated" / "customers.parquet")
    assert clean["customer_id"].tolist() == ["C001"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_fractional_quantity_is_refused_not_rounded(tmp_path: Path, fmt: str):
    events = good_events()
    events["quantity"] = events["quantity"].astype(float)
    events.loc[5, "quantity"] = 1.5
    if fmt == "csv":
        write_csv(tmp_path, "events", events)
    else:
        events.to_parquet(tmp_path / "events.parquet")
    with pytest.raises(ContractError, match=r"Column 'quantity' .* '1\.5', .*: expected an integer\.$"):
        validate(tmp_path, reference_time=REFERENCE)


def test_whole_numbers_in_a_float_column_are_integers(tmp_path: Path):
    events = good_events()
    events["quantity"] = events["quantity"].astype(float)  # 1.0: how a column with gaps arrives
    events.to_parquet(tmp_path / "events.parquet")
    con = open_validated(tmp_path)
    assert con.execute(
        "SELECT DISTINCT typeof(quantity), quantity FROM events WHERE quantity IS NOT NULL"
    ).fetchall() == [("BIGINT", 1)]


def test_a_header_only_events_file_is_one_sentence(tmp_path: Path):
    path = write_csv(tmp_path, "events", good_events().iloc[:0])
    with pytest.raises(ContractError, match=r"has no rows \(a header only\?\): the events table") as err:
        validate(tmp_path)
    assert str(err.value).startswith(str(path))


def test_reject_share_above_limit_stops_after_writing_rejects(tmp_path: Path):
    write_csv(tmp_path, "events", events_with_bad_rows())
    with pytest.raises(ContractError, match=r"above the allowed share of 1\.0%"):
        validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.01)
    assert (tmp_path / "rejects" / "events.parquet").is_file()


def test_missing_events_table_is_one_sentence(tmp_path: Path):
    with pytest.raises(ContractError, match=r"^No events table in .*: expected events\.parquet"):
        validate(tmp_path)


def test_missing_required_column_names_file_and_column(tmp_path: Path):
    path = write_csv(tmp_path, "events", good_events().drop(columns=["event_type"]))
    with pytest.raises(ContractError) as err:
        validate(tmp_path)
    assert str(path) in str(err.value) and "'event_type'" in str(err.value)


def test_uncastable_value_names_column_and_expectation(tmp_path: Path):
    events = good_events().astype({"quantity": object})
    events.loc[5, "quantity"] = "lots"
    write_csv(tmp_path, "events", events)
    with pytest.raises(ContractError, match=r"Column 'quantity' .* 'lots'.*expected an integer"):
        validate(tmp_path)


def test_unreadable_file_is_reported(tmp_path: Path):
    (tmp_path / "events.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(ContractError, match=r"^Cannot read .*events\.parquet"):
        validate(tmp_path)


def test_folder_of_parquet_parts_and_timezones(tmp_path: Path):
    events = good_events()
    parts = tmp_path / "events"
    parts.mkdir()
    events.iloc[:100].to_parquet(parts / "part-0.parquet")
    tz_part = events.iloc[100:].copy()
    tz_part["ts"] = tz_part["ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Shanghai")
    tz_part.to_parquet(parts / "part-1.parquet")
    con = open_validated(tmp_path)
    got = con.execute("SELECT min(ts), max(ts), count(*) FROM events").fetchone()
    assert got == (events["ts"].min().to_pydatetime(), events["ts"].max().to_pydatetime(), 200)
    # optional tables that are absent are empty views with the contract's columns
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_validation_is_reused_until_inputs_change(tmp_path: Path):
    write_csv(tmp_path, "events", good_events())
    first = validate(tmp_path, reference_time=REFERENCE)
    assert not first.reused
    assert validate(tmp_path, reference_time=REFERENCE).reused
    write_csv(tmp_path, "events", good_events(150))
    again = validate(tmp_path, reference_time=REFERENCE)
    assert not again.reused and again.tables["events"].rows_in == 150


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crm.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_on_a_folder_named_with_a_quote(tmp_path: Path):
    folder = tmp_path / "o'brien's data"
    write_csv(folder, "events", events_with_bad_rows())
    result = run_cli("data", "validate", str(folder), "--max-reject-share", "0.01")  # stops: rejects listed
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "events rejected duplicate: 1" in result.stderr and "above the allowed share" in result.stderr


def test_cli_reports_reason_counts(tmp_path: Path):
    events = events_with_bad_rows()
    events = events[events["ts"] != "2030-05-01 10:00:00"]  # "now" is not fixed in the CLI
    write_csv(tmp_path, "events", events)
    result = run_cli("data", "validate", str(tmp_path), "--max-reject-share", "0.5")
    assert result.returncode == 0, result.stderr
    for reason in set(REJECT_REASONS["events"]) - {"future_timestamp"}:
        assert f"{reason}: 1" in result.stderr


@pytest.mark.parametrize(
    "prepare, message",
    [
        (lambda d: None, "No events table"),
        (lambda d: write_csv(d, "events", good_events().drop(columns=["ts"])), "has no column 'ts'"),
    ],
)
def test_cli_fatal_errors_exit_nonzero_without_traceback(tmp_path: Path, prepare, message: str):
    prepare(tmp_path)
    result = run_cli("data", "validate", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
