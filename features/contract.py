"""The input contract as code: table specs, readers and validation.

A data directory holds up to four tables (``events`` required, ``customers``, ``items`` and
``campaigns`` optional), each a Parquet file, a CSV file, or a folder of either. Validation runs in DuckDB:

- fatal problems (missing table or column, unreadable file, an events table without rows, a
  value that cannot be cast to the column's type: ``1.5`` is not an integer) raise
  :class:`ContractError` with one sentence naming file, column and expectation;
- bad rows are set aside in ``DIR/rejects/<table>.parquet`` with a ``reason`` column, and the
  clean rows are written to ``DIR/validated/<table>.parquet``, which every later stage reads
  through :func:`open_validated`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from features.errors import UserError
from features.vocab import (
    CAMPAIGN_ARMS,
    CHANNELS,
    EVENT_TYPES,
    EXPOSURE_EVENT_TYPES,
    ITEM_EVENT_TYPES,
    MEMBER_TIERS,
)

CONTRACT_VERSION = "1"

REJECT_REASONS = {
    "events": (
        "null_customer_id",
        "control_character_in_id",
        "bad_timestamp",
        "future_timestamp",
        "unknown_event_type",
        "missing_item",
        "missing_channel",
        "negative_quantity",
        "unknown_channel",
        "duplicate",
    ),
    "customers": (
        "null_customer_id",
        "control_character_in_id",
        "unknown_member_tier",
        "duplicate_customer_id",
    ),
    "items": ("null_item_id", "control_character_in_id", "negative_price", "duplicate_item_id"),
    "campaigns": (
        "null_customer_id",
        "null_campaign_id",
        "bad_timestamp",
        "future_timestamp",
        "unknown_arm",
        "missing_offer",
        "unknown_channel",
        "negative_cost",
        "duplicate_assignment",
    ),
}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # DuckDB type after validation
    required: bool = False  # must be present as a column
    allowed: tuple[str, ...] | None = None  # enum values, lower case


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    required: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


EVENTS = TableSpec(
    "events",
    (
        Column("customer_id", "VARCHAR", required=True),
        Column("ts", "TIMESTAMP", required=True),
        Column("event_type", "VARCHAR", required=True, allowed=EVENT_TYPES),
        Column("item_id", "VARCHAR"),
        Column("quantity", "BIGINT"),
        Column("amount", "DOUBLE"),
        Column("channel", "VARCHAR", allowed=CHANNELS),
    ),
    required=True,
)
CUSTOMERS = TableSpec(
    "customers",
    (
        Column("customer_id", "VARCHAR", required=True),
        Column("signup_ts", "TIMESTAMP"),
        Column("birth_year", "BIGINT"),
        Column("gender", "VARCHAR"),
        Column("region", "VARCHAR"),
        Column("member_tier", "VARCHAR", allowed=MEMBER_TIERS),
        Column("points_balance", "DOUBLE"),
    ),
)
ITEMS = TableSpec(
    "items",
    (
        Column("item_id", "VARCHAR", required=True),
        Column("category", "VARCHAR"),
        Column("subcategory", "VARCHAR"),
        Column("price", "DOUBLE"),
        Column("launch_date", "TIMESTAMP"),
        Column("active", "BOOLEAN"),
    ),
)
# One row per customer drawn into a randomised campaign: the arm (treatment gets the offer, control
# is held out), the offer, its channel and its cost for this customer (0 for the control arm).
CAMPAIGNS = TableSpec(
    "campaigns",
    (
        Column("customer_id", "VARCHAR", required=True),
        Column("campaign_id", "VARCHAR", required=True),
        Column("ts", "TIMESTAMP", required=True),
        Column("arm", "VARCHAR", required=True, allowed=CAMPAIGN_ARMS),
        Column("offer", "VARCHAR", required=True),
        Column("channel", "VARCHAR", allowed=CHANNELS),
        Column("cost", "DOUBLE"),
    ),
)
TABLES: dict[str, TableSpec] = {t.name: t for t in (EVENTS, CUSTOMERS, ITEMS, CAMPAIGNS)}


class ContractError(UserError):
    """Input that breaks the contract; the message is one sentence meant for the user."""


@dataclass
class TableReport:
    table: str
    source: str
    rows_in: int
    rows_clean: int
    rejects: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_clean

    @property
    def reject_share(self) -> float:
        return self.rows_rejected / self.rows_in if self.rows_in else 0.0


@dataclass
class ValidationReport:
    data_dir: Path
    tables: dict[str, TableReport]
    fingerprint: str
    reused: bool = False

    def to_dict(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "fingerprint": self.fingerprint,
            "contract_version": CONTRACT_VERSION,
            "tables": {
                name: {
                    "source": r.source,
                    "rows_in": r.rows_in,
                    "rows_clean": r.rows_clean,
                    "rejects": r.rejects,
                }
                for name, r in self.tables.items()
            },
        }


# ---------------------------------------------------------------------------------------------
# locating and reading tables


def find_table_files(data_dir: Path, table: str) -> tuple[str, list[Path]] | None:
    """Return ("parquet"|"csv", files) for a table, or None when the table is absent."""
    data_dir = Path(data_dir)
    for fmt in ("parquet", "csv"):
        single = data_dir / f"{table}.{fmt}"
        if single.is_file():
            return fmt, [single]
    folder = data_dir / table
    if folder.is_dir():
        for fmt in ("parquet", "csv"):
            files = sorted(folder.rglob(f"*.{fmt}"))
            if files:
                return fmt, files
        raise ContractError(
            f"Folder {folder} holds no .parquet or .csv files: expected the {table} table there."
        )
    return None


def sql_string(value: str | Path) -> str:
    """``value`` (a path, say) as a SQL string literal: in quotes, its own quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


_sql_str = sql_string  # its name inside this module
# An id holding a control character (a NUL byte, a tab, a line break) is a broken export, not an id.
CONTROL_CHARACTER = r"'[\x00-\x1f\x7f]'"


def _reader_sql(fmt: str, files: list[Path]) -> str:
    paths = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({paths}, union_by_name = true)"
    # CSV: read every column as text and cast ourselves, so a bad value is ours to report.
    return f"read_csv({paths}, header = true, all_varchar = true, union_by_name = true)"


def _describe(con: duckdb.DuckDBPyConnection, source_sql: str, where: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ContractError(f"Cannot read {where}: {first_line}.") from None
    return {r[0].lower(): r[1] for r in rows}


def _connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.Error):  # in Jupyter, DuckDB wants ipywidgets to change it
        con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
    return con


def connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up as validation needs it (UTC, no progress bar)."""
    return _connect(memory_limit)


def _typed_column_sql(col: Column, present: dict[str, str]) -> str:
    """An expression that casts the raw column to the contract type (NULL when absent)."""
    raw = present.get(col.name)
    if raw is None:
        return f"CAST(NULL AS {col.sql_type})"
    ident = f'"{col.name}"'
    if col.sql_type == "TIMESTAMP":
        if raw.upper().startswith("TIMESTAMP WITH TIME ZONE"):
            return f"CAST({ident} AS TIMESTAMP)"  # session time zone is UTC
        if raw.upper().startswith(("TIMESTAMP", "DATE")):
            return f"CAST({ident} AS TIMESTAMP)"
        return f"CAST(TRY_CAST(NULLIF(trim(CAST({ident} AS VARCHAR)), '') AS TIMESTAMPTZ) AS TIMESTAMP)"
    if col.sql_type == "VARCHAR":
        expr = f"NULLIF(trim(CAST({ident} AS VARCHAR)), '')"
        return f"lower({expr})" if col.allowed else expr
    if col.sql_type == "BOOLEAN":
        return f"TRY_CAST(NULLIF(trim(CAST({ident} AS VARCHAR)), '') AS BOOLEAN)"
    text = f"NULLIF(trim(CAST({ident} AS VARCHAR)), '')"
    if col.sql_type == "BIGINT":  # a cast would round 1.5 to 2: a fraction is not an integer
        number = f"TRY_CAST({text} AS DOUBLE)"
        return f"CASE WHEN {number} = floor({number}) THEN TRY_CAST({text} AS BIGINT) END"
    return f"TRY_CAST({text} AS {col.sql_type})"


def _check_casts(
    con: duckdb.DuckDBPyConnection, source_sql: str, spec: TableSpec, present: dict[str, str], where: str
) -> None:
    """Stop on a value that cannot be cast to its column's type (timestamps are row rejects).

    One scan for every column (a query costs milliseconds even over a posted batch of ten rows)."""
    checked = [c for c in spec.columns if c.name in present and c.sql_type != "VARCHAR" and c.name != "ts"]
    if not checked:
        return
    firsts = []
    for col in checked:
        raw = f"NULLIF(trim(CAST(\"{col.name}\" AS VARCHAR)), '')"
        firsts.append(
            f"first({raw}) FILTER (WHERE {raw} IS NOT NULL AND {_typed_column_sql(col, present)} IS NULL)"
        )
    bad = con.execute(f"SELECT {', '.join(firsts)} FROM {source_sql}").fetchone()
    for col, value in zip(checked, bad, strict=True):
        if value is not None:
            raise ContractError(
                f"Column {col.name!r} in {where} has the value {value!r}, which cannot be cast"
                f" to {col.sql_type.lower()}: expected {_expected(col)}."
            )


def _expected(col: Column) -> str:
    return {
        "BIGINT": "an integer",
        "DOUBLE": "a number",
        "TIMESTAMP": "a timestamp such as 2025-03-01 12:00:00",
        "BOOLEAN": "true or false",
    }.get(col.sql_type, col.sql_type.lower())


# ---------------------------------------------------------------------------------------------
# per-table rules: the reason a row is set aside, first matching rule wins


def _enum_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(_sql_str(v) for v in values) + ")"


def _events_reason_sql(reference_ts: str) -> str:
    return f"""
        CASE
          WHEN customer_id IS NULL THEN 'null_customer_id'
          WHEN regexp_matches(customer_id, {CONTROL_CHARACTER})
            OR regexp_matches(item_id, {CONTROL_CHARACTER}) THEN 'control_character_in_id'
          WHEN ts IS NULL THEN 'bad_timestamp'
          WHEN ts > TIMESTAMP {_sql_str(reference_ts)} THEN 'future_timestamp'
          WHEN event_type IS NULL OR event_type NOT IN {_enum_list(EVENT_TYPES)}
            THEN 'unknown_event_type'
          WHEN event_type IN {_enum_list(ITEM_EVENT_TYPES)} AND item_id IS NULL THEN 'missing_item'
          WHEN event_type IN {_enum_list(EXPOSURE_EVENT_TYPES)} AND channel IS NULL THEN 'missing_channel'
          WHEN quantity < 0 THEN 'negative_quantity'
          WHEN channel IS NOT NULL AND channel NOT IN {_enum_list(CHANNELS)} THEN 'unknown_channel'
        END"""


def _campaigns_reason_sql(reference_ts: str) -> str:
    """A campaign row is set aside without its ids, a valid time, a known arm or an offer."""
    return f"""
        CASE
          WHEN customer_id IS NULL THEN 'null_customer_id'
          WHEN campaign_id IS NULL THEN 'null_campaign_id'
          WHEN ts IS NULL THEN 'bad_timestamp'
          WHEN ts > TIMESTAMP {_sql_str(reference_ts)} THEN 'future_timestamp'
          WHEN arm IS NULL OR arm NOT IN {_enum_list(CAMPAIGN_ARMS)} THEN 'unknown_arm'
          WHEN offer IS NULL THEN 'missing_offer'
          WHEN channel IS NOT NULL AND channel NOT IN {_enum_list(CHANNELS)} THEN 'unknown_channel'
          WHEN cost < 0 THEN 'negative_cost'
        END"""


def _row_reason_sql(table: str, reference_ts: str) -> tuple[str, list[str], str]:
    """(reason expression, duplicate key columns, duplicate reason) for a table."""
    if table == "events":
        return _events_reason_sql(reference_ts), EVENTS.column_names, "duplicate"
    if table == "customers":
        reason = f"""
        CASE
          WHEN customer_id IS NULL THEN 'null_customer_id'
          WHEN regexp_matches(customer_id, {CONTROL_CHARACTER}) THEN 'control_character_in_id'
          WHEN member_tier IS NOT NULL AND member_tier NOT IN {_enum_list(MEMBER_TIERS)}
            THEN 'unknown_member_tier'
        END"""
        return reason, ["customer_id"], "duplicate_customer_id"
    if table == "campaigns":
        return _campaigns_reason_sql(reference_ts), ["campaign_id", "customer_id"], "duplicate_assignment"
    reason = f"""
        CASE
          WHEN item_id IS NULL THEN 'null_item_id'
          WHEN regexp_matches(item_id, {CONTROL_CHARACTER}) THEN 'control_character_in_id'
          WHEN price < 0 THEN 'negative_price'
        END"""
    return reason, ["item_id"], "duplicate_item_id"


def _source(data_dir: Path, spec: TableSpec) -> tuple[str, str] | None:
    """(reader SQL, the place to name in messages) of a table, or None for an absent optional one."""
    found = find_table_files(data_dir, spec.name)
    if found is None:
        if spec.required:
            raise ContractError(
                f"No {spec.name} table in {data_dir}: expected {spec.name}.parquet,"
                f" {spec.name}.csv or a {spec.name}/ folder of them."
            )
        return None
    fmt, files = found
    where = str(files[0]) if len(files) == 1 else f"{data_dir / spec.name}/"
    return _reader_sql(fmt, files), where


def _check_columns(
    con: duckdb.DuckDBPyConnection, source_sql: str, spec: TableSpec, where: str
) -> dict[str, str]:
    """The source's columns and types, after checking the required ones and the casts."""
    present = _describe(con, source_sql, where)
    for col in spec.columns:
        if col.required and col.name not in present:
            raise ContractError(
                f"{where} has no column {col.name!r}: the {spec.name} table needs"
                f" {', '.join(c.name for c in spec.columns if c.required)}."
            )
    _check_casts(con, source_sql, spec, present, where)
    return present


def _create_checked(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    spec: TableSpec,
    present: dict[str, str],
    reference_ts: str,
    where: str,
    carry: tuple[str, ...] = (),
) -> list[str]:
    """The temporary table ``_checked``: typed rows with the reason each is set aside (or NULL).

    ``carry``: source columns kept as they are beside the typed ones; of exact duplicates, the
    first in the order of ``carry[0]`` is kept. Returns the duplicate key columns.
    """
    typed = ", ".join(
        [*(f"{_typed_column_sql(c, present)} AS {c.name}" for c in spec.columns), *(f'"{c}"' for c in carry)]
    )
    reason, dup_keys, dup_reason = _row_reason_sql(spec.name, reference_ts)
    dup_partition = ", ".join(dup_keys) + (f' ORDER BY "{carry[0]}"' if carry else "")
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _checked AS
            WITH typed AS (SELECT {typed} FROM {source_sql}),
            reasoned AS (SELECT *, {reason} AS reason FROM typed)
            SELECT * EXCLUDE (reason),
                   CASE WHEN reason IS NULL AND row_number() OVER (
                          PARTITION BY reason IS NULL, {dup_partition}) > 1
                        THEN {_sql_str(dup_reason)} ELSE reason END AS reason
            FROM reasoned
            """
        )
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ContractError(f"Cannot read {where}: {first_line}.") from None
    return dup_keys


def check_relation(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    spec: TableSpec,
    reference_ts: str,
    where: str,
    carry: tuple[str, ...] = (),
) -> list[str]:
    """Check the rows of ``source_sql`` (files or a registered frame) against ``spec`` into the
    temporary table ``_checked``; stop on a missing column or a value that cannot be cast.

    The one implementation of the row rules: ``crm data validate`` runs it over a table's files,
    :func:`check_rows` over posted events. Returns the duplicate key columns.
    """
    present = _check_columns(con, source_sql, spec, where)
    return _create_checked(con, source_sql, spec, present, reference_ts, where, carry)


def _write_checked(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, order: str, validated_dir: Path, rejects_dir: Path
) -> tuple[int, dict[str, int]]:
    """Write the clean rows of ``_checked`` and its rejects; return (rows in, rejects per reason)."""
    counts = dict(
        con.execute(
            "SELECT reason, count(*) FROM _checked WHERE reason IS NOT NULL GROUP BY reason ORDER BY 2 DESC"
        ).fetchall()
    )
    rows_in = con.execute("SELECT count(*) FROM _checked").fetchone()[0]
    con.execute(
        f"COPY (SELECT * EXCLUDE (reason) FROM _checked WHERE reason IS NULL ORDER BY {order})"
        f" TO {_sql_str(validated_dir / f'{spec.name}.parquet')} (FORMAT parquet)"
    )
    if counts:
        con.execute(
            f"COPY (SELECT * FROM _checked WHERE reason IS NOT NULL)"
            f" TO {_sql_str(rejects_dir / f'{spec.name}.parquet')} (FORMAT parquet)"
        )
    con.execute("DROP TABLE _checked")
    return rows_in, counts


def _validate_table(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    spec: TableSpec,
    reference_ts: str,
    validated_dir: Path,
    rejects_dir: Path,
) -> TableReport | None:
    """Check one table and write its clean rows and rejects; None when an optional table is absent."""
    source = _source(data_dir, spec)
    if source is None:
        return None
    source_sql, where = source
    dup_keys = check_relation(con, source_sql, spec, reference_ts, where)
    if spec.required and con.execute("SELECT count(*) FROM _checked").fetchone()[0] == 0:
        raise ContractError(
            f"{where} has no rows (a header only?): the {spec.name} table needs at least one row."
        )
    order = {"events": "customer_id, ts", "campaigns": "campaign_id, customer_id"}.get(spec.name, dup_keys[0])
    rows_in, counts = _write_checked(con, spec, order, validated_dir, rejects_dir)
    return TableReport(
        table=spec.name,
        source=where,
        rows_in=rows_in,
        rows_clean=rows_in - sum(counts.values()),
        rejects=counts,
    )


# ---------------------------------------------------------------------------------------------
# the public entry points


ROW = "_row"  # the position of a checked row in its batch


@dataclass
class RowCheck:
    """A checked batch: the clean rows (typed as the contract says) and the rejected ones with a
    ``reason``, both indexed by their position in the batch and with its extra columns."""

    clean: pd.DataFrame
    rejected: pd.DataFrame


def check_rows(
    rows: pd.DataFrame,
    spec: TableSpec | None = None,
    reference_time: datetime | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    where: str = "the posted events",
) -> RowCheck:
    """Check a batch of rows (default: events) by the rules ``crm data validate`` applies to files.

    Columns beyond the contract's (an ``event_id``) are carried along unchecked. Raises
    :class:`ContractError` when a contract column is missing or holds a value of the wrong type.
    ``con``: a connection from :func:`connect` to reuse (opening one costs more than checking a
    small batch); its time zone must stay UTC, which is how ISO 8601 offsets are read for files.
    """
    spec = spec or EVENTS
    con = con if con is not None else _connect()
    extra = tuple(c for c in rows.columns if c not in spec.column_names and c != ROW)
    # as Arrow: DuckDB scans it faster than a pandas frame, and each check is a scan
    batch = pa.Table.from_pandas(rows.assign(**{ROW: range(len(rows))}), preserve_index=False)
    con.register("_rows", batch)
    try:
        check_relation(con, "_rows", spec, _reference_ts(reference_time), where, carry=(ROW, *extra))
        checked = con.execute(f"SELECT * FROM _checked ORDER BY {ROW}").df().set_index(ROW)
        con.execute("DROP TABLE _checked")
    finally:
        con.unregister("_rows")
    checked.index.name = None
    bad = checked["reason"].notna()
    return RowCheck(clean=checked.loc[~bad].drop(columns="reason"), rejected=checked.loc[bad])


def input_fingerprint(data_dir: Path) -> str:
    """A hash of the input files' names, sizes and modification times, and the contract version."""
    data_dir = Path(data_dir)
    h = hashlib.sha256(CONTRACT_VERSION.encode())
    for table in TABLES:
        found = find_table_files(data_dir, table)
        if found is None:
            continue
        for f in found[1]:
            st = f.stat()
            h.update(f"{f.relative_to(data_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def validate(
    data_dir: str | Path,
    max_reject_share: float = 0.05,
    reference_time: datetime | None = None,
    reuse: bool = True,
    memory_limit: str | None = None,
) -> ValidationReport:
    """Validate a data directory, write ``validated/`` and ``rejects/``, and report counts.

    ``reference_time`` is "now" for the future-timestamp rule (UTC; default the current time).
    Raises :class:`ContractError` on a fatal problem, or when more than ``max_reject_share`` of a
    table's rows were rejected (the rejects are written first, so they can be inspected).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError(f"Data directory {data_dir} does not exist or is not a folder.")
    fingerprint = input_fingerprint(data_dir)
    report = _reused_report(data_dir, fingerprint, max_reject_share) if reuse else None
    if report is None:
        reference_ts = _reference_ts(reference_time)
        report = _validate_fresh(data_dir, fingerprint, max_reject_share, reference_ts, memory_limit)
    _check_share(report, max_reject_share)
    return report


def _reused_report(data_dir: Path, fingerprint: str, max_reject_share: float) -> ValidationReport | None:
    """The last validation's report when the input and the allowed share are unchanged."""
    manifest_path = data_dir / "validated" / "manifest.json"
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("fingerprint") != fingerprint or manifest.get("max_reject_share") != max_reject_share:
        return None
    return _report_from_manifest(data_dir, manifest)


def _reference_ts(reference_time: datetime | None) -> str:
    """The time the future-timestamp rule compares with, as a naive UTC timestamp literal."""
    ref = reference_time or datetime.now(UTC)
    if ref.tzinfo is not None:
        ref = ref.astimezone(UTC).replace(tzinfo=None)
    return ref.strftime("%Y-%m-%d %H:%M:%S.%f")


def _validate_fresh(
    data_dir: Path, fingerprint: str, max_reject_share: float, reference_ts: str, memory_limit: str | None
) -> ValidationReport:
    """Validate every table into ``validated/`` (renamed into place at the end) and ``rejects/``."""
    tmp_dir = data_dir / "validated.tmp"
    rejects_dir = data_dir / "rejects"
    for d in (tmp_dir, rejects_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    con = _connect(memory_limit)
    try:
        tables = {}
        for spec in TABLES.values():
            report = _validate_table(con, data_dir, spec, reference_ts, tmp_dir, rejects_dir)
            if report is not None:
                tables[spec.name] = report
    finally:
        con.close()
    report = ValidationReport(data_dir=data_dir, tables=tables, fingerprint=fingerprint)
    manifest = report.to_dict() | {"max_reject_share": max_reject_share, "reference_time": reference_ts}
    (tmp_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    validated_dir = data_dir / "validated"
    if validated_dir.exists():
        shutil.rmtree(validated_dir)
    tmp_dir.rename(validated_dir)  # atomic: a half-written validated/ is never read
    return report


def _report_from_manifest(data_dir: Path, manifest: dict) -> ValidationReport:
    tables = {
        name: TableReport(name, t["source"], t["rows_in"], t["rows_clean"], t["rejects"])
        for name, t in manifest["tables"].items()
    }
    return ValidationReport(data_dir, tables, manifest["fingerprint"], reused=True)


def _check_share(report: ValidationReport, max_reject_share: float) -> None:
    for r in report.tables.values():
        if r.reject_share > max_reject_share:
            raise ContractError(
                f"{r.rows_rejected:,} of {r.rows_in:,} rows ({r.reject_share:.1%}) of {r.source}"
                f" were rejected, above the allowed share of {max_reject_share:.1%}:"
                f" see {report.data_dir / 'rejects' / (r.table + '.parquet')} for the reasons."
            )


def empty_table_sql(spec: TableSpec) -> str:
    cols = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in spec.columns)
    return f"SELECT {cols} WHERE false"


def open_validated(
    data_dir: str | Path,
    con: duckdb.DuckDBPyConnection | None = None,
    max_reject_share: float = 0.05,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``events``, ``customers``, ``items`` and ``campaigns`` over clean data.

    Validates first when ``validated/`` is missing or older than the input files. Absent
    optional tables are empty views with the contract's columns, so feature SQL never branches.
    ``events`` also holds the events of ``DATA/eventlog.sqlite`` not yet compacted into the folder
    (:func:`features.eventlog.with_event_log`), so batch jobs see what the service accepted.
    """
    data_dir = Path(data_dir)
    validate(data_dir, max_reject_share=max_reject_share, memory_limit=memory_limit)
    if con is None:
        con = _connect(memory_limit)
    for spec in TABLES.values():
        path = data_dir / "validated" / f"{spec.name}.parquet"
        if path.is_file():
            source = f"SELECT * FROM read_parquet({_sql_str(path)})"
            if spec is EVENTS:  # and what the event log accepted since its last compaction
                from features.eventlog import with_event_log

                source = with_event_log(con, data_dir, source)
            con.execute(f"CREATE OR REPLACE VIEW {spec.name} AS {source}")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {spec.name} AS {empty_table_sql(spec)}")
    return con
