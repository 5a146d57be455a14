"""The recommender as an MLflow pyfunc: what training logs and registers, and serving loads.

The logged model carries the bundle (:mod:`serving.bundle`) as its artifact and the ``features``
and ``serving`` packages as its code, so it loads where this repository is not installed;
``load_context`` builds the :class:`~serving.retrieval.Retrieval` over the bundle, which the
service and the batch job use directly after ``unwrap_python_model()``. Nothing here may import
``training`` or ``crm``: they do not travel with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from features.errors import UserError
from serving.retrieval import Retrieval


def _as_list(value: Any) -> list[str] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


class RecommenderModel(PythonModel):
    """MLflow pyfunc: a batch of customers (``customer_id``, optional ``recent_items``) -> top-k.

    ``params={"k": 10}`` sets the list length. Output is long format (see
    :meth:`Retrieval.to_frame`).
    """

    def __init__(self) -> None:
        self.retrieval: Retrieval | None = None

    def load_context(self, context: Any) -> None:
        self.retrieval = Retrieval.load(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        """Top-k per customer; a customer's non-empty ``recent_items`` replace the bundle's."""
        k = int((params or {}).get("k", 10))
        frame = pd.DataFrame(model_input)
        if "customer_id" not in frame:
            raise UserError("The recommender input needs a customer_id column.")
        retrieval, bundle = self.retrieval, self.retrieval.bundle
        ids = frame["customer_id"].astype(str).tolist()
        given = {}
        if "recent_items" in frame:  # an empty list means "nothing new": the model's own are used
            given = {c: r for c, r in zip(ids, map(_as_list, frame["recent_items"]), strict=True) if r}
        rows = retrieval.customer_rows(ids)
        recent = retrieval.lists_with_overrides(ids, rows, given or None, bundle.recent)
        recs = retrieval.recommend_rows(rows, recent, bundle.owned.take(rows), k)
        return retrieval.to_frame(replace(recs, customer_ids=np.asarray(ids, dtype=object)))

    def recommend(self, customer_ids: Sequence[str], k: int = 10, **filters: Any) -> list[dict[str, Any]]:
        """Answers for a list of customers, for use from Python (notebooks, scripts); see
        :meth:`Retrieval.recommend` for the filters and the fresher item lists it takes."""
        return self.retrieval.recommend(list(customer_ids), k, **filters)
