"""The cost of the engine switch on one machine: snapshot build on Spark local[2] against DuckDB,
same events, same definitions. JSON on stdout.

    python -m bench.scale [--preset demo] [--repeats 3] [--data DIR]

Simulates the preset (unless ``--data`` is given), validates it once, then times (median of
repeats) the full snapshot at one as-of date on DuckDB and on Spark. Spark's session start and
table registration are reported apart from the query time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from features.contract import open_validated
from features.snapshot import build_snapshot
from features.synth import SynthConfig
from features.synth import run as synth

AS_OF = "2025-10-01"


def timed(fn):
    """Seconds that ``fn()`` takes, and what it returns."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    from features.spark import build_snapshot_spark, register_tables, spark_session

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        if args.data is None:
            synth(SynthConfig(preset=args.preset, seed=42, out=data))
        con = open_validated(data)
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        duck = [timed(lambda: build_snapshot(con, AS_OF))[0] for _ in range(args.repeats)]
        start_s, spark = timed(lambda: spark_session(args.master, "crm-bench"))
        spark.sparkContext.setLogLevel("ERROR")
        register_s, _ = timed(lambda: register_tables(spark, data))
        sparks = [timed(lambda: build_snapshot_spark(spark, AS_OF))[0] for _ in range(args.repeats)]
        rows = len(build_snapshot(con, AS_OF))
        spark.stop()
    duck_m, spark_m = statistics.median(duck), statistics.median(sparks)
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "events": events,
                "customers": rows,
                "as_of": AS_OF,
                "master": args.master,
                "repeats": args.repeats,
                "duckdb_seconds_median": round(duck_m, 2),
                "spark_seconds_median": round(spark_m, 2),
                "spark_over_duckdb": round(spark_m / duck_m, 1),
                "spark_session_start_seconds": round(start_s, 1),
                "spark_register_seconds": round(register_s, 1),
                "all_duckdb_seconds": [round(x, 2) for x in duck],
                "all_spark_seconds": [round(x, 2) for x in sparks],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
