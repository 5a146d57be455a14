"""Batch scoring on Spark with the registered champions (the scale path).

Both models are MLflow pyfuncs, so Spark scores them through ``mlflow.pyfunc.spark_udf``: each
executor loads the model once and scores its partitions as pandas batches. ``env_manager="local"``
uses the executors' own Python environment (the project's), which must have this package
installed, as it does with ``pip install -e .[spark]``.
"""

from __future__ import annotations

from features.families import all_features


def churn_scores(spark, customers, model_uri: str = "models:/churn@champion"):
    """``customers`` (a Spark DataFrame with the snapshot columns) plus ``churn_probability``."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
    columns = [F.col(name) for name in all_features()]
    return customers.withColumn("churn_probability", udf(F.struct(*columns)))


def recommendations(spark, customers, k: int = 10, model_uri: str = "models:/recommender@champion"):
    """``customers`` (a Spark DataFrame with ``customer_id``) plus ``items``: the top-``k`` item ids."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(
        spark, model_uri, result_type="array<string>", env_manager="local", params={"k": k, "format": "lists"}
    )
    return customers.withColumn("items", udf(F.struct(F.col("customer_id"))))
