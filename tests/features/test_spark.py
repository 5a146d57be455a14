"""The Spark engine runs the same definitions as DuckDB and gives the same snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import open_validated
from features.snapshot import FeatureBuildConfig, build_snapshot, run

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    from features.spark import spark_session

    session = spark_session("local[2]", "crm-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session


def assert_same_snapshot(duck: pd.DataFrame, spark_frame: pd.DataFrame) -> None:
    """Identical keys and counts; numeric columns equal within 1e-9 relative; strings equal."""
    assert list(duck["customer_id"]) == list(spark_frame["customer_id"])
    assert list(duck.columns) == list(spark_frame.columns)
    for column in duck.columns:
        a, b = duck[column], spark_frame[column]
        if a.dtype == object:
            assert (a.fillna("<null>") == b.fillna("<null>")).all(), column
        else:
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, err_msg=column)
            assert a.sum() == pytest.approx(b.sum(), rel=1e-9), column


@pytest.mark.parametrize("as_of", ["2025-03-01", "2025-10-01"])
def test_spark_matches_duckdb_on_the_tiny_preset(spark, tiny_data: Path, as_of: str):
    from features.spark import build_snapshot_spark, register_tables

    duck = build_snapshot(open_validated(tiny_data), as_of)
    register_tables(spark, tiny_data)
    assert_same_snapshot(duck, build_snapshot_spark(spark, as_of))


def test_spark_matches_duckdb_on_a_hand_built_log(spark, hand_log: Path):
    from features.spark import build_snapshot_spark, register_tables

    duck = build_snapshot(open_validated(hand_log), "2025-07-01")
    register_tables(spark, hand_log)
    assert_same_snapshot(duck, build_snapshot_spark(spark, "2025-07-01"))


def test_features_build_with_the_spark_engine(spark, hand_log: Path, tmp_path: Path):
    result = run(FeatureBuildConfig(data=hand_log, as_of=["2025-07-01"], out=tmp_path, engine="spark"))
    rows, path = result.snapshots["2025-07-01"]
    assert rows == 3 and path.is_file()


def test_spark_reads_the_event_log_with_the_folder_as_duckdb_does(spark, tiny_data_copy: Path):
    """What `POST /events` accepted and `crm events compact` has not folded in yet counts in a
    Spark features build too: the same snapshot as DuckDB's, the logged purchase counted once."""
    from datetime import timedelta

    from features.eventlog import EVENT_LOG_NAME, EventLog
    from features.spark import build_snapshot_spark, register_tables

    data = tiny_data_copy
    con = open_validated(data)  # validates the copy
    end = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    customer = con.execute("SELECT min(customer_id) FROM events").fetchone()[0]
    as_of = end + timedelta(days=2)
    before = build_snapshot(con, as_of).set_index("customer_id").loc[customer, "purchases_total"]
    logged = pd.DataFrame(
        {
            "customer_id": [customer, customer, "LOGGED-NEW"],
            "ts": [
                end + timedelta(hours=1),
                end + timedelta(hours=1, microseconds=250),
                end + timedelta(hours=2),
            ],
            "event_type": ["purchase", "view", "app_open"],
            "item_id": ["LOG-ITEM", "LOG-ITEM", None],
            "quantity": pd.array([1, None, None], dtype="Int64"),
            "amount": [129.0, None, None],
            "channel": ["app", "app", None],
        }
    )
    with EventLog(data / EVENT_LOG_NAME) as log:
        log.append(logged)

    duck = build_snapshot(open_validated(data), as_of)
    assert register_tables(spark, data) == 3
    spark_frame = build_snapshot_spark(spark, as_of)
    assert_same_snapshot(duck, spark_frame)
    row = spark_frame.set_index("customer_id").loc[customer]
    assert row["purchases_total"] == before + 1
