"""The snapshot query: one SQL text per as-of date and dialect, and the dtypes of its result.

The query is built from the declared families (:mod:`features.families`): a single pass over the
events with ``FILTER`` clauses (``agg``), purchases joined with items (``own``) and the customers
table (``c``). The same text runs on DuckDB (:mod:`features.snapshot`) and Spark SQL
(:mod:`features.spark`), with the dialect differences handled by
:class:`features.families.Dialect`; both engines read the query from here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import pandas as pd
from pydantic import BeforeValidator

from features.errors import UserError
from features.families import (
    DUCKDB,
    ENTITY,
    FAMILIES,
    Dialect,
    coded_events_sql,
    select_sql,
    window_aggregates,
)
from features.vocab import ECOSYSTEM


def as_datetime(value: date | datetime | str) -> datetime:
    """An as-of date as a naive UTC datetime at midnight (or the given time)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise UserError(f"As-of date {value!r} is not a date: expected YYYY-MM-DD.") from None


# An as-of date in a job configuration: a date, a datetime or an ISO string, read as a datetime.
AsOfDate = Annotated[datetime, BeforeValidator(as_datetime)]


def snapshot_sql(as_of: date | datetime | str, dialect: Dialect = DUCKDB) -> str:
    """The snapshot query for one as-of date over relations ``events``, ``customers``, ``items``."""
    as_of = as_datetime(as_of)
    t = dialect.ts(as_of)
    aggregates = ",\n    ".join(window_aggregates())
    owns = ",\n    ".join(
        f"max(CASE WHEN i.category = '{cat}' THEN 1 ELSE 0 END) AS owns_{cat}" for cat in ECOSYSTEM
    )
    return f"""
WITH agg AS (
  SELECT customer_id,
    {aggregates}
  FROM ({coded_events_sql(as_of, dialect)}) ev
  GROUP BY customer_id
),
own AS (
  SELECT e.customer_id,
    count(*) AS item_purchases,
    count(*) FILTER (WHERE i.category = 'phone') AS phone_purchases,
    max(e.ts) FILTER (WHERE i.category = 'phone') AS last_phone_ts,
    {owns}
  FROM events e JOIN items i ON e.item_id = i.item_id
  WHERE e.ts < {t} AND e.event_type = 'purchase'
  GROUP BY e.customer_id
),
signed_up AS (
  SELECT customer_id FROM customers
  WHERE customer_id IS NOT NULL AND (signup_ts IS NULL OR signup_ts < {t})
),
known AS (
  -- everyone with an event or a sign-up before as-of; one full join, so `agg` is computed once
  SELECT coalesce(agg.customer_id, s.customer_id) AS known_id, agg.*
  FROM agg FULL OUTER JOIN signed_up s ON s.customer_id = agg.customer_id
)
SELECT agg.known_id AS {ENTITY},
  {select_sql(as_of, dialect)}
FROM known agg
LEFT JOIN own ON own.customer_id = agg.known_id
LEFT JOIN customers c ON c.customer_id = agg.known_id
ORDER BY agg.known_id
"""


def cast_snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes: ints as int64, floats as float64, strings as object (never ``category``)."""
    for fam in FAMILIES:
        for f in fam.features:
            if f.dtype == "int":
                frame[f.name] = frame[f.name].fillna(0).astype("int64")
            elif f.dtype == "float":
                frame[f.name] = frame[f.name].astype("float64")
            else:
                frame[f.name] = frame[f.name].astype(object)
    frame[ENTITY] = frame[ENTITY].astype(object)
    return frame
