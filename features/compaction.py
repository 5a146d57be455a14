"""Compaction: the event log's accepted events folded into the data folder as Parquet parts.

Apart from :mod:`features.eventlog` because it validates the folder again
(:func:`features.contract.validate`), and the contract reads the log: one module each way keeps
the imports of ``features`` free of cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.contract import ContractError, find_table_files, validate
from features.errors import UserError
from features.eventlog import EVENT_COLUMNS, EVENT_LOG_NAME, PART_PREFIX, EventLog, _after


@dataclass(frozen=True)
class Compacted:
    """What :func:`compact` folded: how many events, into which file, through which offset."""

    events: int
    path: Path | None
    through: int


def _compacted_parts(folder: Path) -> int:
    """The last offset held by a compacted part already in ``folder`` (0: none)."""
    ends = [int(p.stem.rsplit("-", 1)[1]) for p in folder.glob(f"{PART_PREFIX}*-*.parquet")]
    return max(ends, default=0)


def compact(data_dir: str | Path, log_path: str | Path | None = None) -> Compacted:
    """Fold the log's events after its compaction mark into ``DATA/events/`` as one Parquet part,
    validate the data folder again, then move the mark.

    A crash after the part is written and before the mark moves is repaired at the next run (the
    part's name holds its last offset), so no event is folded twice. Until the mark moves, a batch
    job that reads the folder and the log may count the part's events twice; afterwards never.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = Path(data_dir)
    path = Path(log_path) if log_path else data_dir / EVENT_LOG_NAME
    if not path.is_file():
        raise UserError(f"No event log at {path}: there is nothing to compact.")
    found = find_table_files(data_dir, "events")
    folder = data_dir / "events"
    if found is None or found[0] != "parquet" or not all(f.is_relative_to(folder) for f in found[1]):
        raise ContractError(
            f"Compaction writes Parquet parts into {folder}/: the events table of {data_dir} must be a"
            " folder of Parquet files (move events.parquet into events/ first)."
        )
    with EventLog(path) as log:
        done = max(log.compacted_through(), _compacted_parts(folder))
        through = log.last_offset()
        if through <= done:
            log.mark_compacted(done)
            return Compacted(0, None, done)
        events = _after(log, done, through)
        schema = pa.schema(
            [("customer_id", pa.string()), ("ts", pa.timestamp("us")), ("event_type", pa.string()),
             ("item_id", pa.string()), ("quantity", pa.int64()), ("amount", pa.float64()),
             ("channel", pa.string())]
        )  # fmt: skip
        table = pa.Table.from_pandas(events[list(EVENT_COLUMNS)], schema=schema, preserve_index=False)
        part = folder / f"{PART_PREFIX}{done + 1:012d}-{through:012d}.parquet"
        partial = part.with_suffix(".tmp")
        pq.write_table(table, partial, compression="zstd")
        partial.replace(part)  # a reader sees the whole part or none of it
        validate(data_dir)
        log.mark_compacted(through)
    return Compacted(len(events), part, through)
