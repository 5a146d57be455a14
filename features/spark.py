"""The scale path for features: the same snapshot SQL on Spark.

One set of definitions: :func:`features.query.snapshot_sql` with the Spark dialect runs over
temporary views ``events``, ``customers`` and ``items`` read from the validated Parquet tables
(``events`` with the event log's events not yet compacted, as on DuckDB).
Needs the ``[spark]`` extra (``pip install -e .[spark]``) and Java 17. ``master`` is
``local[2]`` on one machine or a cluster URL (``spark://...``, ``yarn``, ``k8s://...``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.contract import TABLES
from features.errors import UserError
from features.families import SPARK
from features.query import as_datetime, cast_snapshot, snapshot_sql

SPARK_TYPES = {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE",
               "BOOLEAN": "BOOLEAN"}  # fmt: skip


def spark_session(master: str = "local[2]", app_name: str = "crm-features"):
    """A Spark session in UTC with modest local settings (shuffle partitions suit one machine).

    In local mode the Python workers run this interpreter (the venv's), not the first ``python3`` on
    PATH, which lacks pandas and the models' packages; ``PYSPARK_PYTHON`` overrides it, and on a
    cluster the executors' Python is the cluster's setting.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError("The Spark engine needs the [spark] extra: pip install -e '.[spark]'.") from None
    if master.startswith("local"):
        # PySpark sends each Python function with the interpreter named by PYSPARK_PYTHON, read
        # when the context starts (the spark.pyspark.python setting only reaches spark-submit)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master)
    return (
        builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )


def register_tables(spark, data_dir: str | Path) -> int:
    """Temporary views over ``DIR/validated/`` with the contract's types (empty when absent); the
    ``events`` view adds the event log's events not yet compacted, as the DuckDB engine's does
    (:func:`features.eventlog.with_event_log`). Returns how many events came from the log."""
    validated = Path(data_dir) / "validated"
    if not (validated / "events.parquet").is_file():
        raise UserError(f"{validated} has no events.parquet: run `crm data validate {data_dir}` first.")
    logged = 0
    for spec in TABLES.values():
        columns = ", ".join(f"CAST({c.name} AS {SPARK_TYPES[c.sql_type]}) AS {c.name}" for c in spec.columns)
        path = validated / f"{spec.name}.parquet"
        if path.is_file():
            spark.read.parquet(str(path)).createOrReplaceTempView(f"_raw_{spec.name}")
            view = f"SELECT {columns} FROM _raw_{spec.name}"
            if spec.name == "events":
                logged = _register_log_events(spark, data_dir)
                view += f" UNION ALL SELECT {columns} FROM _log_events" if logged else ""
            spark.sql(view).createOrReplaceTempView(spec.name)
        else:
            empty = ", ".join(f"CAST(NULL AS {SPARK_TYPES[c.sql_type]}) AS {c.name}" for c in spec.columns)
            spark.sql(f"SELECT {empty} WHERE 1 = 0").createOrReplaceTempView(spec.name)
    return logged


def _register_log_events(spark, data_dir: str | Path) -> int:
    """The view ``_log_events``: the log's events after its compaction mark, sent from the driver
    (timestamps as UTC text, which the view's cast reads in the session's UTC); returns their count."""
    from features.eventlog import EVENT_COLUMNS, uncompacted_events

    fresh = uncompacted_events(data_dir)
    if fresh.empty:
        return 0
    fresh = fresh[list(EVENT_COLUMNS)].assign(ts=fresh["ts"].dt.strftime("%Y-%m-%d %H:%M:%S.%f"))
    types = {c.name: SPARK_TYPES[c.sql_type] for c in TABLES["events"].columns}
    types["ts"] = "STRING"
    schema = ", ".join(f"{c} {types[c]}" for c in EVENT_COLUMNS)
    rows = fresh.astype(object).where(fresh.notna(), None).itertuples(index=False, name=None)
    spark.createDataFrame(list(rows), schema).createOrReplaceTempView("_log_events")
    return len(fresh)


def build_snapshot_spark(spark, as_of: datetime | str) -> pd.DataFrame:
    """The snapshot at ``as_of`` computed by Spark, as pandas with the DuckDB path's dtypes."""
    frame = spark.sql(snapshot_sql(as_datetime(as_of), SPARK)).toPandas()
    return cast_snapshot(frame)


def build_snapshots_spark(
    data_dir: str | Path, dates: list[datetime], master: str = "local[2]"
) -> Iterator[tuple[datetime, pd.DataFrame]]:
    """Snapshots for several as-of dates in one Spark session."""
    spark = spark_session(master)
    register_tables(spark, data_dir)
    for d in dates:
        yield d, build_snapshot_spark(spark, d)
