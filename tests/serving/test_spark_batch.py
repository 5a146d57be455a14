"""Batch scoring on Spark through mlflow.pyfunc.spark_udf equals in-process scoring."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest

from features.contract import open_validated
from features.snapshot import build_snapshot

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    from features.spark import spark_session

    session = spark_session("local[2]", "crm-batch-tests")
    session.sparkContext.setLogLevel("ERROR")
    return session


def test_churn_scores_on_spark_equal_in_process(spark, churn_run, tiny_data: Path):
    from serving.spark_batch import churn_scores

    snapshot = build_snapshot(open_validated(tiny_data), "2026-01-01").head(300)
    local = mlflow.pyfunc.load_model(churn_run.model_uri).unwrap_python_model().probability(snapshot)
    scored = churn_scores(spark, spark.createDataFrame(snapshot), model_uri=churn_run.model_uri).toPandas()
    by_id = scored.set_index("customer_id").loc[snapshot["customer_id"], "churn_probability"].to_numpy()
    np.testing.assert_allclose(by_id, local, rtol=1e-9)
