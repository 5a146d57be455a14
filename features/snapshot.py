"""Point-in-time customer snapshots: one row per customer from events with ``ts < as_of``.

The query (:func:`features.query.snapshot_sql`) runs here on DuckDB, the default engine, or on
Spark SQL through :mod:`features.spark` (the scale path); ``crm features build`` is :func:`run`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from features.contract import input_fingerprint, open_validated
from features.errors import UserError
from features.families import FEATURE_SET_NAME, feature_set_version
from features.query import AsOfDate, as_datetime, cast_snapshot, snapshot_sql
from features.spark import build_snapshots_spark
from features.vocab import ENGINES, Engine


def build_snapshot(con: duckdb.DuckDBPyConnection, as_of: date | datetime | str) -> pd.DataFrame:
    """The snapshot at ``as_of`` from a connection with views events/customers/items."""
    frame = con.execute(snapshot_sql(as_of)).df()
    return cast_snapshot(frame)


def write_snapshot(con: duckdb.DuckDBPyConnection, as_of: date | datetime | str, path: Path) -> int:
    """Write the snapshot at ``as_of`` to a Parquet file straight from DuckDB; returns its rows.

    No DataFrame in between: the conversion to Python objects is a large part of the build time
    for many customers (bench/features.py reports both ways).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    quoted = str(tmp).replace("'", "''")
    rows = con.execute(f"COPY ({snapshot_sql(as_of)}) TO '{quoted}' (FORMAT parquet)").fetchone()[0]
    tmp.replace(path)  # a reader never sees half a file
    return int(rows)


def data_end(con: duckdb.DuckDBPyConnection) -> datetime:
    """The end of the observed data: the last event's timestamp."""
    last = con.execute("SELECT max(ts) FROM events").fetchall()[0][0]
    if last is None:
        raise UserError("The events table is empty: there is nothing to build features from.")
    return last


# ---------------------------------------------------------------------------------------------
# the job: crm features build


class FeatureBuildConfig(BaseModel):
    """``crm features build``: snapshots of ``data`` at each ``as_of`` date, written to ``out``."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    as_of: list[AsOfDate]
    out: Path
    engine: Engine = "duckdb"
    spark_master: str = "local[2]"

    @field_validator("engine", mode="before")
    @classmethod
    def _known_engine(cls, value: object) -> object:
        """An unknown engine is the user's one-sentence error, not a validation trace."""
        if value not in ENGINES:
            raise UserError(f"Unknown engine {value!r}: expected one of {', '.join(ENGINES)}.")
        return value


@dataclass
class FeatureBuildResult:
    out: Path
    snapshots: dict[str, tuple[int, Path]] = field(default_factory=dict)
    seconds: float = 0.0


def snapshot_path(out: Path, as_of: date | datetime | str) -> Path:
    """Where the build writes the snapshot at ``as_of``."""
    return Path(out) / f"snapshot_as_of={as_datetime(as_of):%Y-%m-%d}.parquet"


def _build_duckdb(cfg: FeatureBuildConfig, result: FeatureBuildResult) -> None:
    con = open_validated(cfg.data)
    for d in cfg.as_of:
        path = snapshot_path(result.out, d)
        result.snapshots[f"{d:%Y-%m-%d}"] = (write_snapshot(con, d, path), path)


def _build_spark(cfg: FeatureBuildConfig, result: FeatureBuildResult) -> None:
    open_validated(cfg.data).close()  # validate once, then Spark reads validated/
    for d, frame in build_snapshots_spark(cfg.data, cfg.as_of, master=cfg.spark_master):
        path = snapshot_path(result.out, d)
        frame.to_parquet(path, index=False)
        result.snapshots[f"{d:%Y-%m-%d}"] = (len(frame), path)


def run(cfg: FeatureBuildConfig) -> FeatureBuildResult:
    """Build one snapshot per as-of date and a manifest in ``cfg.out``."""
    start = time.perf_counter()
    if not cfg.as_of:
        raise UserError("No as-of dates given: expected --as-of YYYY-MM-DD[,YYYY-MM-DD...].")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    result = FeatureBuildResult(out=out)
    build = _build_spark if cfg.engine == "spark" else _build_duckdb
    build(cfg, result)
    manifest = {
        "feature_set": FEATURE_SET_NAME,
        "version": feature_set_version(),
        "engine": cfg.engine,
        "as_of": [f"{d:%Y-%m-%d}" for d in cfg.as_of],
        "rows": {k: v[0] for k, v in result.snapshots.items()},
        "input_fingerprint": input_fingerprint(cfg.data),
        "sql_sha256": hashlib.sha256(snapshot_sql(cfg.as_of[0]).encode()).hexdigest()[:16],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    result.seconds = time.perf_counter() - start
    return result
